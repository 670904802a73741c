-- Facilities: the hospitals shipments are destined to. A shipment or a
-- receiver's device may only name a facility that exists here.
CREATE TABLE facilities (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    region     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX facilities_by_region ON facilities (region);

-- Databases from before this table existed: adopt every facility already
-- named by a document or a device, so nothing becomes unreachable.
INSERT INTO facilities (id, name, region, created_at)
SELECT DISTINCT facility_id, facility_id, '', 0 FROM (
    SELECT facility_id FROM documents
    UNION SELECT facility_id FROM devices WHERE facility_id IS NOT NULL
) AS named;

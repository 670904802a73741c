-- Projections for coordinators: flat rows derived from each shipment
-- document (shared/src/projection.rs), written in the same transaction as
-- the changes they derive from, so dashboards and reports never load
-- documents. They are a cache: `aidsync admin rebuild-projections` (and the
-- server at start, when projection_meta.version is behind the code)
-- recomputes them from the documents. Lists of strings are JSON arrays.

ALTER TABLE shipments ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE shipments ADD COLUMN voided_receipts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN open_discrepancies BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN last_receipt_at BIGINT;
CREATE INDEX shipments_by_donor ON shipments (donor);
CREATE INDEX shipments_by_expected_on ON shipments (expected_on);

CREATE TABLE shipment_lines (
    shipment_id        TEXT NOT NULL REFERENCES shipments (id),
    line_id            TEXT NOT NULL,
    item               TEXT NOT NULL,
    category           TEXT NOT NULL,
    unit               TEXT NOT NULL,
    expected           BIGINT NOT NULL,
    received           BIGINT NOT NULL,
    good               BIGINT NOT NULL,
    damaged            BIGINT NOT NULL,
    missing_parts      BIGINT NOT NULL,
    wrong_item         BIGINT NOT NULL,
    outstanding        BIGINT NOT NULL,
    over_received      BIGINT NOT NULL,
    serials_expected   TEXT NOT NULL,
    serials_missing    TEXT NOT NULL,
    serials_unexpected TEXT NOT NULL,
    PRIMARY KEY (shipment_id, line_id)
);
CREATE INDEX shipment_lines_by_category ON shipment_lines (category, shipment_id);

CREATE TABLE shipment_receipts (
    shipment_id       TEXT NOT NULL REFERENCES shipments (id),
    receipt_id        TEXT NOT NULL,
    line_id           TEXT NOT NULL,
    quantity          BIGINT NOT NULL,
    condition         TEXT NOT NULL,
    serials           TEXT NOT NULL,
    note              TEXT NOT NULL,
    recorded_by       TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    recorded_at       BIGINT NOT NULL,
    received_at BIGINT,
    voided            BIGINT NOT NULL,
    voids             TEXT,
    PRIMARY KEY (shipment_id, receipt_id)
);
CREATE INDEX shipment_receipts_by_recorder ON shipment_receipts (recorded_by);

CREATE TABLE shipment_discrepancies (
    shipment_id TEXT NOT NULL REFERENCES shipments (id),
    line_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    serials     TEXT NOT NULL,
    receipts    TEXT NOT NULL,
    resolved    BIGINT NOT NULL,
    PRIMARY KEY (shipment_id, line_id, kind)
);

CREATE TABLE shipment_duplicates (
    shipment_id    TEXT NOT NULL REFERENCES shipments (id),
    line_id        TEXT NOT NULL,
    first_receipt  TEXT NOT NULL,
    second_receipt TEXT NOT NULL,
    reason         TEXT NOT NULL,
    serials        TEXT NOT NULL,
    PRIMARY KEY (shipment_id, first_receipt, second_receipt)
);

CREATE TABLE shipment_conflicts (
    shipment_id TEXT NOT NULL REFERENCES shipments (id),
    path        TEXT NOT NULL,
    candidates  TEXT NOT NULL,
    PRIMARY KEY (shipment_id, path)
);

-- Which derivation rules the rows above follow; the server rebuilds them
-- when the code's version is newer.
CREATE TABLE projection_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO projection_meta (id, version) VALUES (1, 0);

-- aidsync schema, SQLite flavour (keep in step with ../postgres/0001_init.sql).

-- A phone or browser. Its token is stored only as a SHA-256 hash.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    facility_id TEXT,               -- NULL: may see every facility
    name        TEXT NOT NULL,
    actor_id    TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- The commit counter. Every write transaction that stores changes takes the
-- next value while holding this row, so versions are handed out in commit
-- order and a client cursor never skips a late commit.
CREATE TABLE sync_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO sync_counter (id, value) VALUES (1, 0);

-- One row per shipment document. `snapshot` is a compacted automerge save of
-- every change with seq <= snapshot_seq; later changes are applied on load.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    facility_id     TEXT NOT NULL,
    created_version BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    snapshot        BLOB NOT NULL,
    snapshot_seq    BIGINT NOT NULL
);
CREATE INDEX documents_by_facility_version ON documents (facility_id, version);
CREATE INDEX documents_by_version ON documents (version);

-- Append-only: every accepted automerge change, who sent it and when.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL REFERENCES documents (id),
    hash        TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    version     BIGINT NOT NULL,
    device_id   TEXT REFERENCES devices (id),
    user_id     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (document_id, hash)
);
CREATE INDEX changes_by_document_version ON changes (document_id, version);
CREATE INDEX changes_by_device ON changes (device_id);

-- Projection for coordinator queries, updated in the same transaction as the
-- changes it derives from.
CREATE TABLE shipments (
    id           TEXT PRIMARY KEY REFERENCES documents (id),
    facility_id  TEXT NOT NULL,
    donor        TEXT NOT NULL,
    programme    TEXT NOT NULL,
    reference    TEXT NOT NULL,
    expected_on  TEXT,
    status       TEXT NOT NULL,
    expected     BIGINT NOT NULL,
    received     BIGINT NOT NULL,
    damaged      BIGINT NOT NULL,
    outstanding  BIGINT NOT NULL,
    receipts     BIGINT NOT NULL,
    duplicates   BIGINT NOT NULL,
    conflicts    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX shipments_by_facility_status ON shipments (facility_id, status);

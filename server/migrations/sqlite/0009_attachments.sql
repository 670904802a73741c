-- Attachments (issue 14). The documents hold only references (hash, type,
-- size); these tables hold the rows derived from them and the bytes.

-- One row per attachment event, derived from the documents like the other
-- projections: who may upload or download a hash is decided from here.
CREATE TABLE shipment_attachments (
    shipment_id   TEXT NOT NULL REFERENCES shipments (id),
    attachment_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    receipt_id    TEXT,
    sha256        TEXT,
    media_type    TEXT,
    size          BIGINT,
    width         BIGINT,
    height        BIGINT,
    signer_name   TEXT,
    signer_role   TEXT,
    removes       TEXT,
    removed       BIGINT NOT NULL,
    note          TEXT NOT NULL,
    recorded_by   TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (shipment_id, attachment_id)
);
CREATE INDEX shipment_attachments_by_sha256 ON shipment_attachments (sha256);

-- Each content once, whoever attached it and however often.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    size        BIGINT NOT NULL,
    bytes       BLOB NOT NULL,
    stored_at   BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL
);

-- An upload in progress, one per content and uploader (so nobody can
-- block or spoil another's upload): its chunks in order, each at the
-- offset it starts at. Complete and verified, they become one `blobs` row
-- (or, for content stored already, proof the uploader has it).
CREATE TABLE upload_chunks (
    sha256      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    start       BIGINT NOT NULL,
    -- The whole content's length, as the upload declared it.
    total       BIGINT NOT NULL,
    bytes       BLOB NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, user_id, start)
);

-- Which facilities' records may show a stored content: those where
-- someone uploaded its bytes. Knowing a hash is not enough to read a file
-- (hashes travel in documents and exports): a record at another facility
-- naming the same hash gets the file only once someone there uploads it
-- too (verified, not stored again).
CREATE TABLE blob_access (
    sha256      TEXT NOT NULL,
    facility_id TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (sha256, facility_id)
);

-- Bytes each user uploaded per day (days since the epoch, UTC), for the
-- per-user daily limit; kept in the database so it holds across servers.
CREATE TABLE upload_quota (
    user_id TEXT NOT NULL,
    day     BIGINT NOT NULL,
    bytes   BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Small JPEG previews of stored images for the dashboard, made on first
-- request and kept: a content never changes under its hash.
CREATE TABLE thumbnails (
    sha256 TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);

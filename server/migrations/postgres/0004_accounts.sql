-- Devices belong to accounts: a device is created by logging in, its token
-- expires, and its scope comes from its user's role. Devices registered
-- before accounts existed get expires_at = 0, i.e. they must log in again.
ALTER TABLE devices ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX devices_by_user ON devices (user_id);

-- The audit trail: an admin lists a user's changes.
CREATE INDEX changes_by_user ON changes (user_id);

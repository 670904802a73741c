-- Which timeline of commits this database is on. A phone's cursor names
-- the epoch it was issued in; a database restored from a backup gets a new
-- epoch (`aidsync admin backup` writes one into the copy, `aidsync admin
-- mark-restored` sets one after any other restore), so every phone's older
-- cursor is recognised as coming from commits this database may have lost,
-- and the phone starts over and re-sends them. Version numbers alone cannot
-- tell: after a restore they are handed out again.
ALTER TABLE sync_counter ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

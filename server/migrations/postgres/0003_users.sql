-- People. A receiver belongs to one facility; a coordinator to a region
-- (NULL: every region); an admin to neither. Passwords are stored only as
-- argon2id PHC strings.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('receiver', 'coordinator', 'admin')),
    facility_id   TEXT REFERENCES facilities (id),
    region        TEXT,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT,
    CHECK ((role = 'receiver') = (facility_id IS NOT NULL)),
    CHECK (role = 'coordinator' OR region IS NULL)
);
CREATE INDEX users_by_facility ON users (facility_id);

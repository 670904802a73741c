-- Failed-login budgets, kept in the database so that every server process
-- on it counts the same attempts (issue 13): a guesser spreading attempts
-- over several servers gets no more than from one.
CREATE TABLE login_throttle (
    -- 'ip:<address>' or 'user:<id>'
    key     TEXT PRIMARY KEY,
    -- Attempts owed, in 1/60,000ths: repaid at the per-minute rate per
    -- millisecond, so a budget of N per minute is full again a minute
    -- after its last attempt.
    debt    BIGINT NOT NULL,
    last_ms BIGINT NOT NULL
);

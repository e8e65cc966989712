-- 0003: API tokens (as SQLite's 0003). Only the SHA-256 of each secret is
-- kept; the secret itself is shown once, when the token is made. Revoked
-- tokens stay, so that `token list` can still show who had access and
-- until when.
CREATE TABLE tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT,
    role        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL DEFAULT 0,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

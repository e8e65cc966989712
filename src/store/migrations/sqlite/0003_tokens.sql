-- 0003: API tokens. Only the SHA-256 of each secret is kept; the secret
-- itself is shown once, when the token is made. Revoked tokens stay, so
-- that `token list` can still show who had access and until when.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    role        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER NOT NULL DEFAULT 0
);

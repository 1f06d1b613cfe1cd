-- Admin API keys: only the SHA-256 of each key is stored (the key is shown once).
CREATE TABLE admin_keys (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    hint       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

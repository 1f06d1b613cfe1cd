-- Identity: users, sessions, refresh tokens, TOTP and recovery codes, MFA login
-- challenges, JWT signing keys, login throttling; admin key expiry, IP allowlist and
-- last use.
--
-- Times are unix seconds (UTC). No secret is stored in the clear: passwords, refresh
-- tokens, recovery codes and login challenges only as hashes made by bourse-auth; TOTP
-- secrets and private signing keys only as encrypted blobs the store cannot read.
-- Text compares bytewise (SQLite's BINARY collation), as COLLATE "C" does on PostgreSQL.

CREATE TABLE users (
    id                  TEXT NOT NULL PRIMARY KEY,
    -- Normalised by the caller; unique as given.
    email               TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'frozen')),
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    mfa_changed_at      INTEGER
) STRICT;
CREATE UNIQUE INDEX users_email ON users (email);

-- One row per login. A session is the family of its refresh tokens: revoking it makes
-- every one of them unusable.
CREATE TABLE sessions (
    id           TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    revoked_at   INTEGER,
    auth_time    INTEGER NOT NULL,
    acr          TEXT NOT NULL,
    -- Space-separated authentication methods (RFC 8176).
    amr          TEXT NOT NULL,
    client_ip    TEXT,
    user_agent   TEXT CHECK (length(user_agent) <= 256)
) STRICT;
-- Listing a user's sessions and revoking all of them.
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- used_at is set when the token is rotated; presenting it again is reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- At most one TOTP secret per user: pending until confirmed_at is set.
CREATE TABLE totp (
    user_id         TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc      BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    -- The last time step accepted: a step is never accepted twice.
    last_used_step  INTEGER,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER
) STRICT;

-- Single-use codes; they go with the TOTP secret they were issued for.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES totp (user_id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- The second step of a login with 2FA on.
CREATE TABLE mfa_challenges (
    challenge_hash TEXT NOT NULL PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    consumed_at    INTEGER
) STRICT;
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);

-- JWT signing keys: the newest unretired one signs; every unexpired one verifies.
CREATE TABLE signing_keys (
    kid         TEXT NOT NULL PRIMARY KEY,
    private_enc BLOB NOT NULL,
    -- The public key as a JWK (JSON text).
    public_jwk  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    expires_at  INTEGER
) STRICT;
CREATE INDEX signing_keys_created ON signing_keys (created_at);

-- Failed logins per key (acct:<email>, ip:<address>).
CREATE TABLE login_throttle (
    throttle_key    TEXT NOT NULL PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER
) STRICT;
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure_at);

-- allowed_cidrs: space-separated; empty means any address.
ALTER TABLE admin_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE admin_keys ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_keys ADD COLUMN last_used_at INTEGER;

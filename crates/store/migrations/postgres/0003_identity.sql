-- Identity: users, sessions, refresh tokens, TOTP and recovery codes, MFA login
-- challenges, JWT signing keys, login throttling; admin key expiry, IP allowlist and
-- last use.
--
-- Times are unix seconds (UTC). No secret is stored in the clear: passwords, refresh
-- tokens, recovery codes and login challenges only as hashes made by bourse-auth; TOTP
-- secrets and private signing keys only as encrypted blobs the store cannot read.
-- Ids that are ordered (users, sessions, signing keys) use COLLATE "C": byte order,
-- as on SQLite.

CREATE TABLE users (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- Normalised by the caller; unique as given.
    email               TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'frozen')),
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    mfa_changed_at      BIGINT
);
CREATE UNIQUE INDEX users_email ON users (email);

-- One row per login. A session is the family of its refresh tokens: revoking it makes
-- every one of them unusable.
CREATE TABLE sessions (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at   BIGINT,
    auth_time    BIGINT NOT NULL,
    acr          TEXT NOT NULL,
    -- Space-separated authentication methods (RFC 8176).
    amr          TEXT NOT NULL,
    client_ip    TEXT,
    user_agent   TEXT CHECK (length(user_agent) <= 256)
);
-- Listing a user's sessions and revoking all of them.
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- used_at is set when the token is rotated; presenting it again is reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- At most one TOTP secret per user: pending until confirmed_at is set.
CREATE TABLE totp (
    user_id         TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc      BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    -- The last time step accepted: a step is never accepted twice.
    last_used_step  BIGINT,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT
);

-- Single-use codes; they go with the TOTP secret they were issued for.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES totp (user_id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login with 2FA on.
CREATE TABLE mfa_challenges (
    challenge_hash TEXT NOT NULL PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at     BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    consumed_at    BIGINT
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);

-- JWT signing keys: the newest unretired one signs; every unexpired one verifies.
CREATE TABLE signing_keys (
    kid         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    private_enc BYTEA NOT NULL,
    -- The public key as a JWK (JSON text).
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    expires_at  BIGINT
);
CREATE INDEX signing_keys_created ON signing_keys (created_at);

-- Failed logins per key (acct:<email>, ip:<address>).
CREATE TABLE login_throttle (
    throttle_key    TEXT NOT NULL PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT
);
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure_at);

-- allowed_cidrs: space-separated; empty means any address.
ALTER TABLE admin_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE admin_keys ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_keys ADD COLUMN last_used_at BIGINT;

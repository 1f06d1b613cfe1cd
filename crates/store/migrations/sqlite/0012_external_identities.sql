-- Sign in with an external OpenID Connect provider ("Sign in with Google", or any
-- compliant provider): the identities linked to accounts, the logins in flight, and
-- which first factor a two-factor login challenge stands for.
--
-- An account made from an external identity has no password: its users.password_hash
-- is the empty string, which no password verifies against (a dummy hash is checked
-- instead, so timing says nothing).

-- One row per (issuer, subject) pair, the stable identity of an OpenID Connect user.
-- `provider` is the configured name at link time (display only: the pair is the key,
-- so renaming a provider keeps its links). `email` is what the provider said last,
-- with whether it said the address was verified; the account's own email is only ever
-- taken from a verified one.
CREATE TABLE external_identities (
    id             TEXT NOT NULL PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL CHECK (length(provider) <= 64),
    issuer         TEXT NOT NULL CHECK (length(issuer) <= 512),
    subject        TEXT NOT NULL CHECK (length(subject) <= 255),
    email          TEXT CHECK (length(email) <= 254),
    email_verified INTEGER NOT NULL CHECK (email_verified IN (0, 1)),
    linked_at      INTEGER NOT NULL,
    last_login_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX external_identities_subject ON external_identities (issuer, subject);
CREATE INDEX external_identities_user ON external_identities (user_id, linked_at);

-- A login sent to a provider and not back yet: keyed by the SHA-256 of its `state`,
-- bound to the browser that started it (SHA-256 of its `__Host-bourse_oidc` cookie),
-- single use (taken by deleting it) and short-lived. The PKCE verifier is a secret:
-- AES-256-GCM sealed with this table, the row's state hash and the column as
-- associated data.
CREATE TABLE oidc_pending_logins (
    state_hash   TEXT NOT NULL PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    provider     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier_enc BLOB NOT NULL,
    return_to    TEXT CHECK (length(return_to) <= 2048),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX oidc_pending_logins_expires ON oidc_pending_logins (expires_at);

-- `pwd` after a password, `ext` after an external provider: the session opened by the
-- second step carries it in its `amr`.
ALTER TABLE mfa_challenges ADD COLUMN first_factor TEXT NOT NULL DEFAULT 'pwd'
    CHECK (first_factor IN ('pwd', 'ext'));

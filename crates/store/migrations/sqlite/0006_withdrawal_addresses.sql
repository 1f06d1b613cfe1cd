-- The withdrawal whitelist: a user's own addresses, usable only after a cool-down.
CREATE TABLE withdrawal_addresses (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset      TEXT NOT NULL,
    address    TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    usable_at  INTEGER NOT NULL,
    deleted_at INTEGER
) STRICT;

CREATE INDEX withdrawal_addresses_user ON withdrawal_addresses (user_id, created_at);
-- One live entry per (user, asset, address).
CREATE UNIQUE INDEX withdrawal_addresses_live ON withdrawal_addresses (user_id, asset, address)
    WHERE deleted_at IS NULL;

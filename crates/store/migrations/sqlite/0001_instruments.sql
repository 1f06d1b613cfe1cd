-- Reference data: the tradable instruments.
--
-- Decimals are TEXT holding the exact decimal string (never REAL), so "0.001" reads back
-- as "0.001". expiry is RFC 3339 UTC with exactly six fractional digits
-- (2026-12-25T08:00:00.000000Z): fixed width, so text order is time order, and the same
-- microsecond precision as TIMESTAMPTZ on PostgreSQL.
CREATE TABLE instruments (
    symbol              TEXT NOT NULL PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('perpetual', 'future', 'option')),
    base_asset          TEXT NOT NULL,
    quote_asset         TEXT NOT NULL,
    settlement_asset    TEXT NOT NULL,
    tick_size           TEXT NOT NULL,
    lot_size            TEXT NOT NULL,
    min_order_size      TEXT NOT NULL,
    max_order_size      TEXT NOT NULL,
    contract_multiplier TEXT NOT NULL,
    expiry              TEXT,
    strike              TEXT,
    option_right        TEXT CHECK (option_right IN ('call', 'put')),
    status              TEXT NOT NULL CHECK (status IN ('active', 'halted', 'expired')),
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Perpetuals never expire; futures and options always do.
    CHECK ((kind = 'perpetual') = (expiry IS NULL)),
    -- Only options have a strike and a right.
    CHECK ((kind = 'option') = (strike IS NOT NULL)),
    CHECK ((kind = 'option') = (option_right IS NOT NULL))
) STRICT;

-- Listing filters by kind or status and pages by symbol.
CREATE INDEX instruments_kind_symbol ON instruments (kind, symbol);
CREATE INDEX instruments_status_symbol ON instruments (status, symbol);

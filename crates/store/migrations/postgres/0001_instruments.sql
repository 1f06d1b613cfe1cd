-- Reference data: the tradable instruments.
--
-- Decimals are NUMERIC without a typmod, so the scale given is kept ("0.001" reads back
-- as "0.001"); never floating point. symbol uses the "C" collation so that ordering and
-- the keyset cursor (symbol > $after) are byte order, as on SQLite and in Rust.
CREATE TABLE instruments (
    symbol              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('perpetual', 'future', 'option')),
    base_asset          TEXT NOT NULL,
    quote_asset         TEXT NOT NULL,
    settlement_asset    TEXT NOT NULL,
    tick_size           NUMERIC NOT NULL,
    lot_size            NUMERIC NOT NULL,
    min_order_size      NUMERIC NOT NULL,
    max_order_size      NUMERIC NOT NULL,
    contract_multiplier NUMERIC NOT NULL,
    expiry              TIMESTAMPTZ,
    strike              NUMERIC,
    option_right        TEXT CHECK (option_right IN ('call', 'put')),
    status              TEXT NOT NULL CHECK (status IN ('active', 'halted', 'expired')),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Perpetuals never expire; futures and options always do.
    CHECK ((kind = 'perpetual') = (expiry IS NULL)),
    -- Only options have a strike and a right.
    CHECK ((kind = 'option') = (strike IS NOT NULL)),
    CHECK ((kind = 'option') = (option_right IS NOT NULL))
);

-- Listing filters by kind or status and pages by symbol.
CREATE INDEX instruments_kind_symbol ON instruments (kind, symbol);
CREATE INDEX instruments_status_symbol ON instruments (status, symbol);

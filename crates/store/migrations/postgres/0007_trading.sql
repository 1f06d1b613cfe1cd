-- Trading read models: what the engine's events projected (orders, fills, ledger,
-- positions, up to the projection checkpoint), trading accounts, withdrawals and
-- deposits.
--
-- Money and sizes that can exceed 64 bits (micro-units, lots of a position, cost basis)
-- are TEXT holding a signed integer in decimal, written only in canonical form by the
-- store. Ids, ticks, lots of one order and times (unix microseconds, *_us) are BIGINT.

-- The sequence number of the last journal record whose changes are applied: one row,
-- moved in the same transaction as the changes.
CREATE TABLE projection_checkpoint (
    id       BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO projection_checkpoint (id, last_seq) VALUES (1, 0);

-- A user's trading account. Ids start at 1 and are never reused: 0 is the exchange's
-- fee account. No foreign key to users: trading records outlive an identity.
CREATE TABLE trading_accounts (
    account_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY CHECK (account_id > 0),
    user_id    TEXT NOT NULL UNIQUE
);

CREATE TABLE orders (
    order_id        BIGINT NOT NULL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    symbol          TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type      TEXT NOT NULL CHECK (order_type IN ('limit', 'market')),
    price_ticks     BIGINT,
    quantity_lots   BIGINT NOT NULL,
    filled_lots     BIGINT NOT NULL,
    leaves_lots     BIGINT NOT NULL,
    time_in_force   TEXT NOT NULL CHECK (time_in_force IN ('gtc', 'ioc', 'fok', 'gtt')),
    post_only       BOOLEAN NOT NULL,
    reduce_only     BOOLEAN NOT NULL,
    stp             TEXT NOT NULL CHECK (stp IN ('cancel_taker', 'cancel_maker', 'cancel_both')),
    status          TEXT NOT NULL
        CHECK (status IN ('new', 'partially_filled', 'filled', 'canceled', 'expired')),
    cancel_reason   TEXT,
    idempotency_key TEXT,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL
);
-- An account's orders, newest first.
CREATE INDEX orders_account ON orders (account_id, order_id);
-- Not unique: the claim in idempotency_keys is what makes a key single-use, and it is
-- purged after a day; a key reused later must never stall the projection. The newest
-- order under a key is the one a retry finds.
CREATE INDEX orders_idempotency ON orders (account_id, idempotency_key, order_id)
    WHERE idempotency_key IS NOT NULL;

-- One row per side of a trade: the maker's and the taker's share the trade id.
CREATE TABLE fills (
    trade_id      BIGINT NOT NULL,
    order_id      BIGINT NOT NULL,
    account_id    BIGINT NOT NULL,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price_ticks   BIGINT NOT NULL,
    quantity_lots BIGINT NOT NULL,
    liquidity     TEXT NOT NULL CHECK (liquidity IN ('maker', 'taker')),
    fee_micros    TEXT NOT NULL,
    ts_us         BIGINT NOT NULL,
    PRIMARY KEY (trade_id, order_id)
);
CREATE INDEX fills_account ON fills (account_id, trade_id);
-- Public trades (the taker rows of a symbol), newest first.
CREATE INDEX fills_public ON fills (symbol, liquidity, trade_id);
-- Traded volume over a time window.
CREATE INDEX fills_volume ON fills (symbol, liquidity, ts_us);

CREATE TABLE ledger (
    entry_id       BIGINT NOT NULL PRIMARY KEY,
    account_id     BIGINT NOT NULL,
    asset          TEXT NOT NULL,
    delta_micros   TEXT NOT NULL,
    balance_micros TEXT NOT NULL,
    reason         TEXT NOT NULL CHECK (reason IN ('deposit', 'withdrawal_held',
        'withdrawal_released', 'realised_pnl', 'option_premium', 'fee', 'funding',
        'settlement')),
    ref_id         TEXT,
    ts_us          BIGINT NOT NULL
);
CREATE INDEX ledger_account ON ledger (account_id, entry_id);

-- Listed by symbol: COLLATE "C" is byte order, as on SQLite.
CREATE TABLE positions (
    account_id          BIGINT NOT NULL,
    symbol              TEXT COLLATE "C" NOT NULL,
    size_lots           TEXT NOT NULL,
    cost                TEXT NOT NULL,
    realised_pnl_micros TEXT NOT NULL,
    updated_at_us       BIGINT NOT NULL,
    PRIMARY KEY (account_id, symbol)
);

CREATE TABLE withdrawals (
    withdrawal_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    BIGINT NOT NULL,
    asset         TEXT NOT NULL,
    amount_micros TEXT NOT NULL,
    address_id    TEXT NOT NULL,
    address       TEXT NOT NULL,
    state         TEXT NOT NULL
        CHECK (state IN ('requested', 'pending', 'approved', 'completed', 'rejected')),
    reason        TEXT,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX withdrawals_account ON withdrawals (account_id, withdrawal_id);
-- The admin queue by state, newest first.
CREATE INDEX withdrawals_state ON withdrawals (state, withdrawal_id);

-- Each admin key approves a withdrawal at most once.
CREATE TABLE withdrawal_approvals (
    withdrawal_id  BIGINT NOT NULL REFERENCES withdrawals (withdrawal_id) ON DELETE CASCADE,
    key_id         TEXT NOT NULL,
    approved_at_us BIGINT NOT NULL,
    PRIMARY KEY (withdrawal_id, key_id)
);

CREATE TABLE deposits (
    deposit_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    BIGINT NOT NULL,
    asset         TEXT NOT NULL,
    amount_micros TEXT NOT NULL,
    tx_ref        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'credited', 'failed')),
    created_at_us BIGINT NOT NULL,
    UNIQUE (asset, tx_ref)
);
CREATE INDEX deposits_account ON deposits (account_id, deposit_id);

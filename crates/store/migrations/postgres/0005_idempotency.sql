-- Idempotency-Key records: the first response to (account, key) is replayed for a retry
-- with the same request; another request under the same key is refused.
CREATE TABLE idempotency_keys (
    account_id   TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,
    body         BYTEA,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

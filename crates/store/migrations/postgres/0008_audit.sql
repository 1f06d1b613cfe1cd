-- The audit trail: one record per request on either listener, append-only and
-- hash-chained. Each node writes its own chain (`chain_id`), numbered from 1 without
-- gaps; `hash` is SHA-256 over every other column but `id` and the previous record's
-- `hash` (`prev_hash`). `id` is only the insertion order for paging, not evidence.
CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id     TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    ts_us        BIGINT NOT NULL,
    request_id   TEXT NOT NULL,
    listener     TEXT NOT NULL,
    user_id      TEXT,
    session_id   TEXT,
    client_id    TEXT,
    admin_key_id TEXT,
    source_ip    TEXT,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,
    status       BIGINT NOT NULL,
    latency_us   BIGINT NOT NULL,
    problem_code TEXT,
    action       TEXT,
    details      TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    UNIQUE (chain_id, seq)
);

CREATE INDEX audit_log_user ON audit_log (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_admin_key ON audit_log (admin_key_id, id) WHERE admin_key_id IS NOT NULL;
CREATE INDEX audit_log_action ON audit_log (action, id) WHERE action IS NOT NULL;
CREATE INDEX audit_log_time ON audit_log (ts_us);

-- Append-only for the application: changing or removing a record needs someone who
-- can drop this trigger, and `bourse audit verify` then names the record.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

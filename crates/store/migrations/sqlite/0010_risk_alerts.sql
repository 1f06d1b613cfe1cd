-- Risk alerts written by the surveillance pipeline (docs/risk-detection.md), the users
-- each one concerns, and the restrictions an alert's action put on them
-- (`step_up`: the next sensitive action needs a second factor newer than the alert;
-- `freeze_withdrawals`). A `halt_trading` action is the account's kill switch in the
-- exchange core (journaled), so it has no row here.
CREATE TABLE risk_alerts (
    id                  TEXT NOT NULL PRIMARY KEY,
    created_at_us       INTEGER NOT NULL,
    rule                TEXT NOT NULL,
    score               INTEGER NOT NULL,
    action              TEXT NOT NULL,
    subjects            TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    status              TEXT NOT NULL,
    resolved_at_us      INTEGER,
    resolved_by         TEXT,
    resolution          TEXT,
    action_state        TEXT NOT NULL,
    action_lifted_at_us INTEGER,
    action_lifted_by    TEXT
) STRICT;
CREATE INDEX risk_alerts_created ON risk_alerts (created_at_us, id);

CREATE TABLE risk_alert_users (
    alert_id TEXT NOT NULL REFERENCES risk_alerts (id),
    user_id  TEXT NOT NULL,
    PRIMARY KEY (alert_id, user_id)
) STRICT;
CREATE INDEX risk_alert_users_user ON risk_alert_users (user_id, alert_id);

CREATE TABLE risk_restrictions (
    alert_id      TEXT NOT NULL REFERENCES risk_alerts (id),
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    lifted_at_us  INTEGER,
    PRIMARY KEY (alert_id, user_id, kind)
) STRICT;
CREATE INDEX risk_restrictions_user ON risk_restrictions (user_id, kind);

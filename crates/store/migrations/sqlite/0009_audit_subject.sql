-- The account a request acted on when the caller had not (yet) proven who they are,
-- such as the target of a failed login or a failed second factor. Covered by the
-- record's hash like every other column; `GET /v1/account/activity` shows these
-- records to the account's owner.
ALTER TABLE audit_log ADD COLUMN subject_user_id TEXT;
CREATE INDEX audit_log_subject ON audit_log (subject_user_id, id) WHERE subject_user_id IS NOT NULL;

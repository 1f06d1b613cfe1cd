-- API nodes poll recently revoked sessions as a deny list for live access tokens.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

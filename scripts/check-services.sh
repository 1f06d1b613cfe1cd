#!/usr/bin/env bash
# Reports whether the services the test suites use are reachable. With CI=true a
# missing service fails the run; otherwise the suites that need it skip with a message.
set -uo pipefail
missing=()
probe() { # name host port
  if timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then
    echo "  $1 at $2:$3: reachable"
  else
    echo "  $1 at $2:$3: NOT reachable"
    missing+=("$1")
  fi
}
probe PostgreSQL 127.0.0.1 5432
probe Redis 127.0.0.1 6379
probe "NATS JetStream" 127.0.0.1 4222
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "CI=true and these services are missing: ${missing[*]} (see DEVELOPERS.md)" >&2
    exit 1
  fi
  echo "  (outside CI: tests that need them will skip)"
fi
exit 0

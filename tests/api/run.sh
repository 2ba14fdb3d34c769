#!/usr/bin/env bash
# Runs Schemathesis (tests/api/requirements.txt) with every check against a fresh Tutti server's own OpenAPI
# document: no server error, no response outside the document, no mismatch either way between what the
# document allows and what the server accepts, and no response slower than a second on an empty server.
# Usage: tests/api/run.sh <tutti binary> <schemathesis executable>
set -euo pipefail
# Absolute paths: Schemathesis runs from a scratch directory, where it keeps its cache.
tutti="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
st="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export TUTTI_WRITE_KEY="wk-$RANDOM$RANDOM" TUTTI_ADMIN_TOKEN="at-$RANDOM$RANDOM"
"$tutti" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
  sleep 0.1
done
# A fixed seed makes a failure here reproducible with the same command. On a failure, the server's own
# errors (a 500's cause) are shown too.
status=0
cd "$work"
"$st" --config-file "$here/schemathesis.toml" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --checks all --max-response-time 1 --max-examples 30 --seed 20261206 --workers 1 --no-color \
  --report-dir "$work/report" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server errors ---"
  grep -E "ERROR|panicked" "$work/server.log" | tail -20 || true
fi
exit "$status"

#!/usr/bin/env bash
# schemathesis against the served /openapi.json of a real server on loopback, with a bearer
# token for the authenticated routes. Two passes, each with its own account: everything but
# the routes that end the caller's session, then those routes. Exits non-zero on any failure
# (server error, response not matching its schema, accepted invalid body, rejected valid one).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug/sesame
[ -x "$bin" ] || cargo build -q -p sesame-cli
examples=${SESAME_ST_EXAMPLES:-40}
port=${SESAME_ST_PORT:-17979}
base="http://127.0.0.1:$port"
dir=$(mktemp -d)
"$bin" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

token() { # register $1 and print an access token
  local body="{\"username\":\"$1\",\"password\":\"schema horse battery staple\"}"
  curl -sf -H 'content-type: application/json' -d "$body" "$base/api/register" >/dev/null
  curl -sf -H 'content-type: application/json' -d "$body" "$base/api/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

run() { # $1: token, then filters (the WebSocket upgrades and /metrics are never fuzzed)
  local t=$1
  shift
  st --config-file .ci/schemathesis.toml run "$base/openapi.json" \
    -H "Authorization: Bearer $t" --max-examples "$examples" --request-timeout 20 "$@"
}

# Both tokens before the first pass, whose login requests fill the per-address throttle; as
# assignments, so that a failed login stops the script instead of fuzzing without a token.
t1=$(token schemathesis1)
t2=$(token schemathesis2)
run "$t1" --exclude-method DELETE \
  --exclude-path-regex '^/(metrics|auth/login|ws|api/logout|api/logout-all)$'
run "$t2" --include-method POST --include-method DELETE \
  --include-path-regex '^/api/(logout|logout-all|me|sessions/[^/]+|devices/[^/]+)$'
if grep -q 'internal error' "$dir/server.log"; then
  echo "the server logged internal errors:" >&2
  grep 'internal error' "$dir/server.log" >&2
  exit 1
fi

#!/usr/bin/env bash
# Schema-driven API fuzzing: schemathesis (PyPI) generates requests from GET /api/openapi.json against a real
# railyard-api on 127.0.0.1 and fails on any server error (5xx). Bounded: EXAMPLES per operation, a fixed SEED.
# Usage: scripts/api-fuzz.sh   (make api-fuzz; .ci/run runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES="${EXAMPLES:-25}"
SEED="${SEED:-1}"
python3 -m venv .venv-tools
.venv-tools/bin/pip install --quiet schemathesis==4.32.5
cargo build --quiet --bin railyard-api
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${CARGO_TARGET_DIR:-target}/debug/railyard-api" --listen "127.0.0.1:$port" --repo-dir "$dir/repo.git" --git-url "$dir/remote.git" >"$dir/api.log" 2>&1 &
api=$!
trap 'kill $api 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$port/api/environments" -H content-type:application/json \
  -d '{"name":"dev","upstream":{"latest":true}}' >/dev/null
.venv-tools/bin/st run "http://127.0.0.1:$port/api/openapi.json" --checks not_a_server_error \
  --max-examples "$EXAMPLES" --seed "$SEED" --request-timeout 30
echo "api-fuzz: no server errors"

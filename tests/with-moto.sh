#!/usr/bin/env bash
# Runs a command with one moto server (S3, DynamoDB, SQS, Transfer Family) on 127.0.0.1, whose
# URL is passed in MFTG_TEST_MOTO_URL; stops the server afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${MFTG_TEST_PYTHON:-.venv/bin/python}"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="${TMPDIR:-/tmp}/mftg-moto-$port.log"
"$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
ready() { "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$port/moto-api/" 2>/dev/null; }
for _ in $(seq 1 300); do
  if ready; then break; fi
  kill -0 $pid 2>/dev/null || { echo "moto server exited; log: $log" >&2; cat "$log" >&2; exit 1; }
  sleep 0.2
done
ready || { echo "moto server did not start within 60 s" >&2; exit 1; }
echo "moto server on http://127.0.0.1:$port (log: $log)"
export MFTG_TEST_MOTO_URL="http://127.0.0.1:$port"
"$@"

#!/usr/bin/env bash
# make bench: see run.py. Uses the test venv (pyas2lib) made by tests/bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python tests/bench/run.py "$@"

#!/usr/bin/env bash
# make bench: see run.py. Uses the test venv (pyas2lib) made by tests/bootstrap.sh, and GNU time
# for peak memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/time ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time
fi
exec .venv/bin/python tests/bench/run.py "$@"

#!/usr/bin/env bash
# Run the whole test suite: unit tests and integration tests against real servers,
# which this script starts on 127.0.0.1 in temp directories and stops afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec "$BIN/python" -m pytest -q -p no:cacheprovider tests "$@"

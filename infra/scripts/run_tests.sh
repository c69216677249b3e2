#!/usr/bin/env bash
# Run the whole test suite: unit tests and integration tests against real servers.
# Starts a throwaway PostgreSQL on 127.0.0.1 in a temp directory (installing Debian's
# postgresql if missing), points the tests at it, and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

bash infra/scripts/disk_check.sh "${TMPDIR:-/tmp}" 2 "the test suite (its servers, videos and models in ${TMPDIR:-/tmp})"
work=$(mktemp -d /tmp/vidra-test-XXXXXX)
chmod 755 "$work"
cleanup() { bash infra/scripts/pg_test_server.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

port=$("$BIN/python" infra/scripts/free_ports.py 1)
VIDRA_TEST_POSTGRES_URL=$(bash infra/scripts/pg_test_server.sh start "$work/pg" "$port" | tail -n 1)
export VIDRA_TEST_POSTGRES_URL
echo "PostgreSQL for integration tests: $VIDRA_TEST_POSTGRES_URL"

# the slowest tests listed at the end: the learning tests must stay under a minute each
"$BIN/python" -m pytest -q -p no:cacheprovider --durations=25 tests "$@"

#!/usr/bin/env bash
# Throwaway PostgreSQL for tests: a cluster in a temp directory, listening on 127.0.0.1 only.
#   pg_test_server.sh start DIR PORT   -> prints the SQLAlchemy URL of database vidra_test
#   pg_test_server.sh stop DIR
#   pg_test_server.sh halt DIR          -> stop at once (pg_ctl -m immediate), keep the data
#   pg_test_server.sh restart DIR PORT  -> start a halted cluster again (fault-injection tests)
# Installs Debian's postgresql when its binaries are missing; runs the server as the
# 'postgres' user when invoked as root (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] && command -v pg_ctl >/dev/null; then d=$(dirname "$(command -v pg_ctl)"); fi
  echo "$d"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

BIN=$(bindir)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "PostgreSQL not found; installing it (apt-get install -y postgresql)" >&2
  apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  ("${apt[@]}" update -qq && "${apt[@]}" install -y -qq postgresql) >&2
  BIN=$(bindir)
fi

serve() {  # serve DIR PORT: start the cluster in DIR on 127.0.0.1:PORT
  as_owner "$BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $2 -k $1 -c fsync=off -c max_connections=200" \
    start >&2
}

case "$cmd" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_owner "$BIN/initdb" -D "$dir/data" -A trust -U vidra --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
    serve "$dir" "$port"
    "$BIN/createdb" -h 127.0.0.1 -p "$port" -U vidra vidra_test
    echo "postgresql+psycopg://vidra@127.0.0.1:$port/vidra_test"
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    rm -rf "$dir"
    ;;
  halt)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >&2
    ;;
  restart)
    serve "$dir" "${3:?port}"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR | halt DIR | restart DIR PORT" >&2; exit 2 ;;
esac

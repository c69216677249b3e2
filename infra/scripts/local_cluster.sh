#!/usr/bin/env bash
# vidra's production topology on one machine, without containers, on loopback only:
# PostgreSQL (vidra's trajectory store + MLflow's database), an MLflow tracking server backed
# by it (artifacts proxied, stored under the state dir), a Ray head and a second Ray node that
# carries the custom resource {"worker_node": 1}. Everything lives in one state directory.
#   eval "$(infra/scripts/local_cluster.sh up [DIR])"   stdout: only `export NAME=value` lines
#   infra/scripts/local_cluster.sh down [DIR]            stops exactly what `up` started
# DIR: the argument, else $VIDRA_CLUSTER_DIR, else (up) a new temp dir, remembered in
# ${TMPDIR:-/tmp}/vidra-local-cluster.last so that a plain `down` finds it. Binaries come from
# ${VENV:-.venv} (relative to the repository root). PostgreSQL is installed with apt-get when
# missing (infra/scripts/pg_test_server.sh). Diagnostics go to stderr and DIR/*.log.
# Each server runs in its own session (setsid): `down` signals those sessions (never a broad
# `ray stop`), waits, kills leftovers, and checks that no process of theirs remains.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PY="$VENV/bin/python"
LAST="${TMPDIR:-/tmp}/vidra-local-cluster.last"
MARK=".vidra-local-cluster"
WAIT_S=${VIDRA_CLUSTER_WAIT_S:-180}
HEAD_CPUS=${VIDRA_CLUSTER_HEAD_CPUS:-2}
OBJECT_STORE_BYTES=${VIDRA_CLUSTER_OBJECT_STORE_BYTES:-300000000}
# Ray's nodes advertise (and its servers bind) this loopback address. Not 127.0.0.1: Ray
# rewrites "localhost"/127.0.0.1 to the machine's outward address (nodes and clients alike).
RAY_IP=${VIDRA_CLUSTER_RAY_IP:-127.0.0.2}

exec 3>&1 1>&2 # stdout is for the export lines only (fd 3); everything else to stderr

log() { echo "local_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

free_ports() { # N distinct TCP ports, free now and outside the kernel's ephemeral range
  # (VIDRA_CLUSTER_FREE_PORTS: another program that prints them; the tests inject a taken port)
  if [ -n "${VIDRA_CLUSTER_FREE_PORTS:-}" ]; then
    "$VIDRA_CLUSTER_FREE_PORTS" "$1"
  else
    "$PY" "$ROOT/infra/scripts/free_ports.py" "$1"
  fi
}

pg_bindir() {
  local d
  d=$(find /usr/lib/postgresql -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] && command -v pg_ctl >/dev/null; then d=$(dirname "$(command -v pg_ctl)"); fi
  echo "$d"
}

session_pids() { # pids whose session id is $1 (the setsid'd leader), leader included
  ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

dir_pids() { # pids whose command line mentions $1 (a path only our processes use)
  pgrep -f -- "$1" || true
}

start_session() { # start_session NAME LOG CMD...: run CMD in a new session, record its pid
  local name=$1 logfile=$2
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 3>&- & # fd 3 (our stdout) must not stay open
  echo "$!" >"$DIR/$name.pid"
  disown "$!" # no "Killed" notice from this shell when a start-up failure is stopped
  log "$name started (pid $!), log $logfile"
}

try_until() { # try_until WHAT PIDFILES CMD...: retry CMD until it succeeds (status 0), a
  # process in PIDFILES (space-separated, may be empty) exits (1) or WAIT_S passes (2)
  local what=$1 pidfiles=$2 deadline=$((SECONDS + WAIT_S)) pidfile
  shift 2
  until "$@" >/dev/null 2>&1; do
    for pidfile in $pidfiles; do
      if ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then return 1; fi
    done
    [ "$SECONDS" -lt "$deadline" ] || return 2
    sleep 1
  done
  log "$what ready"
}

wait_until() { # wait_until WHAT PIDFILE CMD...: try_until, or fail saying why
  local rc=0
  try_until "$@" || rc=$?
  case $rc in
    0) ;;
    1) die "$1 exited during start-up; see its log in $DIR" ;;
    *) die "$1 not ready after ${WAIT_S}s; see $DIR" ;;
  esac
}

mlflow_healthy() {
  "$PY" -c "import urllib.request as u, sys; u.urlopen(sys.argv[1] + '/health', timeout=3)" "$1"
}

ray_has() { # ray_has ADDRESS REGEX: `ray status` answers and a line matches REGEX (the
  # whole status first: a pipe into grep -q can SIGPIPE it)
  local status
  status=$(env RAY_AUTH_MODE=disabled "$VENV/bin/ray" status --address="$1" 2>/dev/null) || return 1
  grep -qE -- "$2" <<<"$status"
}

ray_fatal_lines() { # Ray's fatal log lines ("[date time C pid tid] ...") in this session
  grep -hsE '^\[[^]]* [CF] ' "$raytmp"/session_latest/logs/*.err || true
}

ray_joined() { # ray_joined ADDRESS REGEX: `ray status` shows what REGEX matches. A Ray process
  # that died (a fatal line in its log) stops both nodes at once: its `ray start` would wait
  # a minute or more before exiting, and would not hurry for SIGTERM
  if [ -n "$(ray_fatal_lines)" ]; then
    stop_session ray-worker 2
    stop_session ray-head 2
    return 1
  fi
  ray_has "$@"
}

ray_job_agent_ready() { # ray_job_agent_ready GCS PORT: the head's dashboard agent (HTTP on
  # PORT) answers and is registered in the GCS, where the job server looks for it; until then
  # `ray job submit` fails with "No available agent to submit job"
  "$PY" - "$@" <<'EOF'
import json, sys, urllib.request
from ray._private.ray_constants import KV_NAMESPACE_DASHBOARD as NS
from ray._raylet import GcsClient
from ray.dashboard.consts import DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX as PREFIX
gcs, port = sys.argv[1], int(sys.argv[2])
urllib.request.urlopen(f"http://{gcs.split(':')[0]}:{port}/api/healthz", timeout=3)
client = GcsClient(address=gcs)
agents = [json.loads(client.internal_kv_get(k, namespace=NS) or b"[0, 0, 0]")
          for k in client.internal_kv_keys(PREFIX.encode(), namespace=NS)]
sys.exit(0 if any(a[1] == port for a in agents) else 1)
EOF
}

stop_session() { # stop_session NAME [GRACE_S]: SIGTERM its session, wait (30 s), SIGKILL the rest
  local name=$1 grace=${2:-30} pid pids deadline
  [ -f "$DIR/$name.pid" ] || return 0
  pid=$(cat "$DIR/$name.pid")
  pids=$(session_pids "$pid")
  if [ -n "$pids" ]; then
    log "stopping $name (session $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while [ -n "$(session_pids "$pid")" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
    pids=$(session_pids "$pid")
    if [ -n "$pids" ]; then
      log "$name: killing what is left: $(echo "$pids" | tr '\n' ' ')"
      # shellcheck disable=SC2086 # word splitting of the pid list is intended
      kill -KILL $pids 2>/dev/null || true
    fi
  fi
  rm -f "$DIR/$name.pid"
}

stop_ray_leftovers() { # any process that escaped the sessions but names our Ray temp dir
  local raydir pids
  raydir=$(state RAY_TMP)
  [ -n "$raydir" ] || return 0
  pids=$(dir_pids "$raydir")
  if [ -n "$pids" ]; then
    log "killing Ray processes left in $raydir: $(echo "$pids" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 1
  fi
}

state() { # state KEY: a value recorded in DIR/state.env
  [ -f "$DIR/state.env" ] || return 0
  sed -n "s/^$1=//p" "$DIR/state.env" | tail -n 1
}

record() { echo "$1=$2" >>"$DIR/state.env"; }

cmd_down() {
  [ -f "$DIR/$MARK" ] || die "$DIR is not a local_cluster.sh state dir (no $MARK)"
  stop_session ray-worker
  stop_session ray-head
  stop_ray_leftovers
  stop_session mlflow
  if [ -d "$DIR/pg" ]; then bash "$ROOT/infra/scripts/pg_test_server.sh" stop "$DIR/pg" >&2; fi
  local left="" key pid
  for key in RAY_WORKER_PID RAY_HEAD_PID MLFLOW_PID; do
    pid=$(state "$key")
    [ -z "$pid" ] || left="$left$(session_pids "$pid")"
  done
  [ -z "$(state RAY_TMP)" ] || left="$left$(dir_pids "$(state RAY_TMP)")"
  [ -z "$left" ] || die "processes still running after down: $left"
  local raytmp
  raytmp=$(state RAY_TMP)
  if [ "${KEEP_LOGS:-0}" = 1 ]; then # a failed `up`: keep its logs to read
    [ -z "$raytmp" ] || cp -r "$raytmp/session_latest/logs" "$DIR/ray-logs" 2>/dev/null || true
    case "$raytmp" in "$DIR"/*) ;; ?*) rm -rf "$raytmp" ;; esac
    rm -rf "${DIR:?}/ray" "${DIR:?}/mlflow" "${DIR:?}/$MARK"
    log "stopped; logs kept in $DIR"
    return 0
  fi
  case "$raytmp" in "$DIR"/*) ;; ?*) rm -rf "$raytmp" ;; esac
  rm -rf "$DIR"
  if [ -f "$LAST" ] && [ "$(cat "$LAST")" = "$DIR" ]; then rm -f "$LAST"; fi
  log "down: $DIR removed"
}

ray_up() { # start the Ray head, then the worker node, on new ports (sets cmd_up's ray_port,
  # agent_port, dash_port); 0 once both have joined, 1 if either exits first, 2 after WAIT_S
  local agent_grpc metrics env_port nm_port om_port client_port
  local w_agent w_grpc w_metrics w_env w_nm w_om
  read -r ray_port agent_port agent_grpc metrics env_port nm_port om_port client_port dash_port \
    w_agent w_grpc w_metrics w_env w_nm w_om <<<"$(free_ports 15)"
  log "Ray head on $RAY_IP:$ray_port (temp dir $raytmp)"
  local client_args=() dash_args=(--include-dashboard=false)
  if [ "$with_client" = 1 ]; then
    client_args=(--ray-client-server-port="$client_port")
    record RAY_CLIENT_PORT "$client_port"
  fi
  # VIDRA_CLUSTER_DASHBOARD=1: the head also runs Ray's dashboard (`ray job submit` needs it)
  if [ "${VIDRA_CLUSTER_DASHBOARD:-0}" = 1 ]; then
    dash_args=(--include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$dash_port")
    record RAY_DASHBOARD_PORT "$dash_port"
  fi
  start_session ray-head "$DIR/ray-head.log" "${ray_env[@]}" "$VENV/bin/ray" start --head \
    --block --node-ip-address="$RAY_IP" --port="$ray_port" "${dash_args[@]}" \
    --temp-dir="$raytmp" --disable-usage-stats --num-cpus="$HEAD_CPUS" \
    --object-store-memory="$OBJECT_STORE_BYTES" --node-manager-port="$nm_port" \
    --object-manager-port="$om_port" --dashboard-agent-listen-port="$agent_port" \
    --dashboard-agent-grpc-port="$agent_grpc" --metrics-export-port="$metrics" \
    --runtime-env-agent-port="$env_port" "${client_args[@]}"
  record RAY_HEAD_PID "$(cat "$DIR/ray-head.pid")"
  record RAY_PORT "$ray_port"
  # joined, not only answering: `ray status` answers once the GCS does, while the head's
  # raylet can still die (it did, in CI, on a port taken meanwhile)
  try_until "Ray head" "$DIR/ray-head.pid" ray_joined "$RAY_IP:$ray_port" "^ [0-9]+ node_" ||
    return
  log "Ray worker node (worker_node: 1, 1 CPU)"
  start_session ray-worker "$DIR/ray-worker.log" "${ray_env[@]}" "$VENV/bin/ray" start \
    --block --address="$RAY_IP:$ray_port" --node-ip-address="$RAY_IP" \
    --resources='{"worker_node": 1}' --num-cpus=1 --temp-dir="$raytmp" \
    --object-store-memory="$OBJECT_STORE_BYTES" --node-manager-port="$w_nm" \
    --object-manager-port="$w_om" --dashboard-agent-listen-port="$w_agent" \
    --dashboard-agent-grpc-port="$w_grpc" --metrics-export-port="$w_metrics" \
    --runtime-env-agent-port="$w_env" --disable-usage-stats
  record RAY_WORKER_PID "$(cat "$DIR/ray-worker.pid")"
  try_until "Ray worker node" "$DIR/ray-head.pid $DIR/ray-worker.pid" \
    ray_joined "$RAY_IP:$ray_port" "worker_node"
}

ray_first_try_failed() { # say why, keep the logs (*.first.log, ray-logs.first), stop both nodes
  local name
  log "a Ray node exited during start-up; starting Ray once more, on new ports. Its errors:"
  ray_fatal_lines | cut -c1-500 | head -n 3 >&2
  for name in ray-head ray-worker; do
    if [ -f "$DIR/$name.log" ]; then
      tail -n 5 "$DIR/$name.log" >&2 || true
      mv "$DIR/$name.log" "$DIR/$name.first.log"
    fi
  done
  stop_session ray-worker
  stop_session ray-head
  stop_ray_leftovers
  cp -r "$raytmp/session_latest/logs" "$DIR/ray-logs.first" 2>/dev/null || true
  rm -f "$raytmp/session_latest" # until the next head links its own: no old fatal lines
}

cmd_up() {
  [ -x "$VENV/bin/ray" ] && [ -x "$VENV/bin/mlflow" ] ||
    die "no ray/mlflow in $VENV/bin; run 'make setup' or set VENV to a virtualenv with vidra[ray,train]"
  [ ! -f "$DIR/$MARK" ] || die "$DIR already holds a cluster; run '$0 down $DIR' first"
  mkdir -p "$DIR"
  chmod 755 "$DIR" # PostgreSQL runs as 'postgres' when we are root: it must reach DIR/pg
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 &&
    ! runuser -u postgres -- test -x "$DIR"; then
    die "user postgres cannot enter $DIR (a parent directory is private): chmod o+x its parents or pick another DIR"
  fi
  touch "$DIR/$MARK"
  trap 'if [ $? != 0 ]; then log "up failed; stopping it"; KEEP_LOGS=1 cmd_down || true; fi' EXIT
  local pg_port ml_port ray_port agent_port dash_port raytmp with_client=0
  read -r pg_port ml_port <<<"$(free_ports 2)"
  # Ray's unix sockets live under its temp dir, and a socket path has at most 107 bytes.
  raytmp="$DIR/ray"
  if [ "${#DIR}" -gt 40 ]; then raytmp=$(mktemp -d /tmp/vidra-cluster-ray-XXXXXX); fi
  record RAY_TMP "$raytmp"

  log "PostgreSQL on 127.0.0.1:$pg_port"
  bash "$ROOT/infra/scripts/pg_test_server.sh" start "$DIR/pg" "$pg_port" >/dev/null 3>&-
  local bin
  bin=$(pg_bindir)
  wait_until "PostgreSQL" "" "$bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -U vidra
  "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U vidra vidra
  "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U vidra mlflow
  record PG_PORT "$pg_port"

  log "MLflow on 127.0.0.1:$ml_port"
  mkdir -p "$DIR/mlflow/artifacts"
  start_session mlflow "$DIR/mlflow.log" env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    "$VENV/bin/mlflow" server --host 127.0.0.1 --port "$ml_port" --workers 1 \
    --backend-store-uri "postgresql+psycopg://vidra@127.0.0.1:$pg_port/mlflow" \
    --serve-artifacts --artifacts-destination "file://$DIR/mlflow/artifacts"
  record MLFLOW_PID "$(cat "$DIR/mlflow.pid")"
  record MLFLOW_PORT "$ml_port"

  local ray_env=(env -u RAY_ADDRESS RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0)
  # With ray[client] installed the head also serves ray://; never on the fixed default 10001.
  if "$PY" -c "import grpc" 2>/dev/null; then with_client=1; fi
  local rc=0
  ray_up || rc=$?
  if [ "$rc" = 1 ]; then # a node died starting (a port taken meanwhile, on a busy machine)
    ray_first_try_failed
    rc=0
    ray_up || rc=$?
  fi
  case $rc in
    0) ;;
    1) die "a Ray node exited during start-up, twice; see its logs in $DIR" ;;
    *) die "Ray's nodes not ready after ${WAIT_S}s; see $DIR" ;;
  esac
  wait_until "MLflow" "$DIR/mlflow.pid" mlflow_healthy "http://127.0.0.1:$ml_port"
  if [ "${VIDRA_CLUSTER_DASHBOARD:-0}" = 1 ]; then
    wait_until "Ray job server's agent" "$DIR/ray-head.pid" \
      ray_job_agent_ready "$RAY_IP:$ray_port" "$agent_port"
  fi
  trap - EXIT

  cat >"$DIR/exports.sh" <<EOF
export VIDRA_DATABASE_URL=postgresql+psycopg://vidra@127.0.0.1:$pg_port/vidra
export VIDRA_MLFLOW__TRACKING_URI=http://127.0.0.1:$ml_port
export VIDRA_RUNNER__EXECUTOR=ray
export VIDRA_RUNNER__RAY_ADDRESS=$RAY_IP:$ray_port
export VIDRA_CLUSTER_DIR=$DIR
export RAY_ADDRESS=$RAY_IP:$ray_port
export RAY_AUTH_MODE=disabled
EOF
  if [ "${VIDRA_CLUSTER_DASHBOARD:-0}" = 1 ]; then
    echo "export RAY_DASHBOARD_ADDRESS=http://127.0.0.1:$dash_port" >>"$DIR/exports.sh"
  fi
  cat "$DIR/exports.sh" >&3
  log "up: state in $DIR; stop with: $0 down $DIR"
}

cmd=${1:-}
case "$cmd" in
  up)
    DIR=${2:-${VIDRA_CLUSTER_DIR:-}}
    if [ -z "$DIR" ]; then
      DIR=$(mktemp -d "${TMPDIR:-/tmp}/vidra-cluster-XXXXXX")
      echo "$DIR" >"$LAST"
    fi
    DIR=$(mkdir -p "$DIR" && cd "$DIR" && pwd)
    cmd_up
    ;;
  down)
    DIR=${2:-${VIDRA_CLUSTER_DIR:-}}
    if [ -z "$DIR" ] && [ -f "$LAST" ]; then DIR=$(cat "$LAST"); fi
    [ -n "$DIR" ] || die "which cluster? pass DIR or set VIDRA_CLUSTER_DIR"
    [ -d "$DIR" ] || die "$DIR does not exist"
    DIR=$(cd "$DIR" && pwd)
    cmd_down
    ;;
  *)
    echo "usage: $0 up [DIR] | down [DIR]" >&2
    exit 2
    ;;
esac

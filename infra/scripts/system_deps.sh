#!/usr/bin/env bash
# Install the system (Debian/Ubuntu apt) packages vidra needs that this machine lacks.
#   system_deps.sh run    what answering and training need: FFmpeg's shared libraries
#                         (torchcodec loads them from the system; PyAV bundles its own)
#   system_deps.sh test   the above plus what the tests start: PostgreSQL's server binaries
# Prints one line per package ("present", "installed", or "MISSING" with the command that
# fixes it). Installs with apt-get as root, or through passwordless sudo; elsewhere it only
# names the package. Exit status: 0 when everything needed is there, 1 otherwise.
# SYSTEM_DEPS_INSTALL=0 only says what is there (installs nothing); LDCONFIG names the
# ldconfig whose cache is read (default /sbin/ldconfig).
set -euo pipefail
mode=${1:-run}
install=${SYSTEM_DEPS_INSTALL:-1}
ldconfig=${LDCONFIG:-/sbin/ldconfig}

have_ffmpeg_libs() {
  # torchcodec dlopens libavutil/libavcodec/libavformat/libswscale of FFmpeg 4..9. The cache
  # is read whole first: under pipefail, `ldconfig -p | grep -q` fails whenever grep exits at
  # its match before ldconfig has written the rest (SIGPIPE), which said MISSING right after
  # apt-get had installed FFmpeg on a fresh machine
  local lib cache
  cache=$("$ldconfig" -p 2>/dev/null) || return 1
  for lib in libavutil libavcodec libavformat libswscale; do
    if ! grep -q "${lib}\.so\." <<<"$cache"; then
      return 1
    fi
  done
}

have_procps() { # local_cluster.sh finds its servers' processes with ps and pgrep
  command -v ps >/dev/null 2>&1 && command -v pgrep >/dev/null 2>&1
}

have_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

apt_install() {
  local runner=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      runner=(sudo -n)
    else
      return 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  local log
  log=$(mktemp /tmp/vidra-apt-XXXXXX.log)
  # a fresh machine's boot-time upgrades may hold dpkg's lock: wait for it rather than fail;
  # the environment goes through `env`, which sudo would otherwise reset
  local apt=("${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  if [ -z "${_APT_UPDATED:-}" ]; then
    "${apt[@]}" update -qq >"$log" 2>&1 || { tail -n 20 "$log" >&2; return 1; }
    _APT_UPDATED=1
  fi
  "${apt[@]}" install -y -qq --no-install-recommends "$@" >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; return 1; }
  rm -f "$log"
}

missing=0
need() {  # need <debian package> <check function> <why>
  local pkg=$1 check=$2 why=$3
  if "$check"; then
    echo "system package $pkg: present"
  elif [ "$install" != 0 ] && apt_install "$pkg" && "$check"; then
    echo "system package $pkg: installed ($why)"
  else
    echo "system package $pkg: MISSING ($why); install it: sudo apt-get install -y $pkg" >&2
    missing=1
  fi
}

case "$mode" in
  run)
    need ffmpeg have_ffmpeg_libs "torchcodec loads FFmpeg's shared libraries"
    ;;
  test)
    need ffmpeg have_ffmpeg_libs "torchcodec loads FFmpeg's shared libraries"
    need postgresql have_postgres "integration tests start a throwaway PostgreSQL"
    need procps have_procps "the cluster tests find their servers' processes"
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
exit "$missing"

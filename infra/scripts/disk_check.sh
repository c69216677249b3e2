#!/usr/bin/env bash
# Fail early, in one line, when a step would run out of disk space half-way.
#   disk_check.sh PATH GIB WHAT
# PATH: where the step writes (it or its nearest existing parent is measured); GIB: what the
# step needs, in GiB; WHAT: the step, as a user would name it. Exit 0 when df reports at
# least GIB free there; 1 with the cause and the fix otherwise.
set -euo pipefail
path=$1 need=$2 what=$3
probe=$path
while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
free_kib=$(df -Pk "$probe" | awk 'NR == 2 {print $4}')
if [ "$free_kib" -lt $((need * 1024 * 1024)) ]; then
  echo "vidra: $what needs about $need GiB free on $(df -P "$probe" | awk 'NR == 2 {print $6}')" \
    "but $((free_kib / 1024 / 1024)) GiB is free: free some space there (old clones, .venv" \
    "copies, /tmp) or set VENV / TMPDIR to a disk with room" >&2
  exit 1
fi

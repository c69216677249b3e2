"""One way to join or start Ray, shared by the Ray job runner and Ray Train."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable, ConfigError

__all__ = ["check_cluster", "ensure_ray"]


def ensure_ray(settings: Settings) -> None:
    """Connect to ``settings.runner.ray_address``, or to a local Ray this process starts in a
    child interpreter and a temp dir (no dashboard, no driver log forwarding), unless Ray is
    already initialised in this process.
    Workers get this process's ``sys.path`` and ``VIDRA_DATA_DIR``."""
    import ray

    check_cluster(settings)
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import logging

    kwargs: dict[str, Any] = {
        "ignore_reinit_error": True,
        "logging_level": logging.INFO
        if logging.getLogger("vidra").getEffectiveLevel() <= logging.INFO
        else logging.ERROR,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {
            "env_vars": {
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                "VIDRA_DATA_DIR": str(settings.data_dir),
            }
        },
    }
    if os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"):
        # a Ray job's driver: its workers already get the job's runtime env; ours (the same
        # data dir, this interpreter's path) is merged over it rather than refused
        os.environ.setdefault("RAY_OVERRIDE_JOB_RUNTIME_ENV", "1")
    address = settings.runner.ray_address or os.environ.get("RAY_ADDRESS")
    # a cluster: given, or the one a Ray job runs in (RAY_ADDRESS); else this process's own
    kwargs["address"] = address or _local_head(kwargs["logging_level"])
    ray.init(**kwargs)


# The local Ray this process started: its head process and address (one per process,
# kept across ray.shutdown() so a later ensure_ray reconnects instead of starting another).
_LOCAL: dict[str, Any] = {}

# Run by a fresh interpreter that imports only Ray: it starts the local cluster, prints its
# address, and stops it when the process that started it closes the pipe (or dies).
_HEAD = """
import json, sys, ray
ctx = ray.init(**json.loads(sys.argv[1]))
print("vidra-ray-head", ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()
ray.shutdown()
"""
_HEAD_START_S = 180.0


def _local_head(logging_level: int) -> str:
    """Start (once per process) a local Ray head in a child interpreter and return its GCS
    address. Ray forks its GCS and raylet with a Python ``preexec_fn``; forked from a process
    like ours (many threads, FFmpeg and torch state) the child must free what other threads
    held and can hang doing so, and the parent-death signal it sets fires when the *thread*
    that forked it exits. A child that imports only Ray avoids both; the cluster lives until
    this process exits (``_stop_local_ray``) or dies (the pipe closes)."""
    import selectors

    head = _LOCAL.get("process")
    if head is not None and head.poll() is None:
        return str(_LOCAL["address"])
    temp_dir = tempfile.mkdtemp(prefix="vidra-ray-")
    log_path = os.path.join(temp_dir, "head.log")
    settings = {
        "_temp_dir": temp_dir,
        "num_cpus": max(2, os.cpu_count() or 2),
        "include_dashboard": False,
        "log_to_driver": False,  # its stdout is a pipe read only up to the address line
        "logging_level": logging_level,
    }
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            [sys.executable, "-c", _HEAD, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    address = ""
    assert head.stdout is not None
    deadline = time.monotonic() + _HEAD_START_S
    with selectors.DefaultSelector() as sel:
        sel.register(head.stdout, selectors.EVENT_READ)
        while not address and sel.select(max(0.0, deadline - time.monotonic())):
            line = head.stdout.readline().decode(errors="replace").split()
            if not line:
                break  # the head exited
            if line[0] == "vidra-ray-head":
                address = line[1]
    if not address:
        head.kill()
        head.wait()
        with open(log_path, errors="replace") as f:
            last = [ln.strip() for ln in f.read().splitlines() if ln.strip()][-1:] or ["no output"]
        raise BackendUnavailable(
            "ray",
            "ray",
            cause=f"the local Ray head did not start within {_HEAD_START_S:.0f} s: {last[0]}",
            fix=f"read {log_path}, or set VIDRA_RUNNER__RAY_ADDRESS to a running cluster",
        )
    _LOCAL.update(process=head, address=address)
    atexit.register(_stop_local_ray, head, temp_dir)
    return address


def _stop_local_ray(head: subprocess.Popen[bytes], temp_dir: str) -> None:
    """At exit: disconnect, stop the local Ray head this process started, and remove its temp
    dir (session logs, sockets, spilled objects), which Ray itself leaves behind."""
    import ray

    try:
        if ray.is_initialized():
            ray.shutdown()
        if head.stdin is not None:
            head.stdin.close()  # the head's cue to shut its cluster down
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def check_cluster(settings: Settings) -> None:
    """On a Ray cluster (``runner.ray_address`` set) every node must reach the same
    trajectory store and tracking server: a SQLite file or a local MLflow store would be a
    different one on each node.

    Raises:
        ConfigError: naming what to set.
    """
    if not settings.runner.ray_address:
        return
    if settings.resolved_database_url().startswith("sqlite"):
        raise ConfigError(
            "VIDRA_DATABASE_URL: a Ray cluster (VIDRA_RUNNER__RAY_ADDRESS) needs a database "
            "every node reaches, not a SQLite file; set VIDRA_DATABASE_URL="
            "postgresql+psycopg://user:password@host:5432/vidra"
        )
    if not settings.resolved_tracking_uri().startswith(("http://", "https://", "databricks")):
        raise ConfigError(
            "VIDRA_MLFLOW__TRACKING_URI: a Ray cluster needs an MLflow tracking server every "
            "node reaches, not a local store; set VIDRA_MLFLOW__TRACKING_URI=http://host:5000"
        )

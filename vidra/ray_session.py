"""One way to join or start Ray, shared by the Ray job runner and Ray Train."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from typing import Any

from vidra.config import Settings
from vidra.errors import ConfigError

__all__ = ["check_cluster", "ensure_ray"]


def ensure_ray(settings: Settings) -> None:
    """Connect to ``settings.runner.ray_address``, or start a local Ray in a temp dir (no
    dashboard, no driver log forwarding), unless Ray is already initialised in this process.
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
    if address:  # a cluster: given, or the one a Ray job runs in (RAY_ADDRESS)
        kwargs["address"] = address
    else:
        kwargs["_temp_dir"] = tempfile.mkdtemp(prefix="vidra-ray-")
        kwargs["num_cpus"] = max(2, os.cpu_count() or 2)
        if threading.current_thread() is not threading.main_thread():
            _init_on_keeper_thread(kwargs)
        else:
            ray.init(**kwargs)
        # registered after ray.init, so it runs before Ray's own exit hook (atexit is LIFO)
        atexit.register(_stop_local_ray, kwargs["_temp_dir"])
        return
    ray.init(**kwargs)


def _stop_local_ray(temp_dir: str) -> None:
    """At exit: stop the local Ray this process started and remove its temp dir (session
    logs, sockets, spilled objects), which Ray itself leaves behind."""
    import ray

    try:
        if ray.is_initialized():
            ray.shutdown()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _init_on_keeper_thread(kwargs: dict[str, Any]) -> None:
    """Start a local Ray from a thread that lives as long as the process. Ray starts its
    GCS and raylet with the parent-death signal set, which Linux sends when the *thread* that
    forked them exits: started from a short-lived thread (a retraining cycle's), the local
    cluster would be killed when that thread ends and the next Ray call would hang."""
    import ray

    started = threading.Event()
    failed: list[BaseException] = []

    def keep() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as e:  # re-raised on the caller's thread
            failed.append(e)
        started.set()
        threading.Event().wait()  # never set: this thread is Ray's parent until exit

    threading.Thread(target=keep, name="vidra-ray-keeper", daemon=True).start()
    started.wait()
    if failed:
        raise failed[0]


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

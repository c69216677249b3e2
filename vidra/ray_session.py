"""One way to join or start Ray, shared by the Ray job runner and Ray Train."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from vidra.config import Settings

__all__ = ["ensure_ray"]


def ensure_ray(settings: Settings) -> None:
    """Connect to ``settings.runner.ray_address``, or start a local Ray in a temp dir (no
    dashboard, no driver log forwarding), unless Ray is already initialised in this process.
    Workers get this process's ``sys.path`` and ``VIDRA_DATA_DIR``."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {
        "ignore_reinit_error": True,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {
            "env_vars": {
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                "VIDRA_DATA_DIR": str(settings.data_dir),
            }
        },
    }
    if settings.runner.ray_address:
        kwargs["address"] = settings.runner.ray_address
    else:
        kwargs["_temp_dir"] = tempfile.mkdtemp(prefix="vidra-ray-")
        kwargs["num_cpus"] = max(2, os.cpu_count() or 2)
    ray.init(**kwargs)

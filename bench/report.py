"""Shared by the benchmark scripts: the report header (date, machine) and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["emit", "header"]


def header(name: str, **versions: str) -> dict[str, Any]:
    """``benchmark``, ``date`` (UTC), ``machine`` (cores, platform, python) and ``versions``."""
    return {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "versions": versions,
    }


def emit(report: dict[str, Any], out: Path | None) -> None:
    """Print the report as JSON and also write it to ``out`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")

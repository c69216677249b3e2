"""Typed ``key=value`` task options (``worlds=3``, ``minutes=30,60``) with errors that name the fix.

Values arrive as strings from the command line or as Python values from code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidra.errors import ConfigError

__all__ = ["opt_float", "opt_floats", "opt_int", "opt_path", "opt_str"]


def _bad(task: str, name: str, value: Any, want: str) -> ConfigError:
    return ConfigError(
        f"task {task!r}: option {name}={value!r} is not {want}; fix: {name}=<{want}>"
    )


def opt_int(options: dict[str, Any], task: str, name: str, default: int, low: int = 0) -> int:
    """An integer option (at least ``low``), ``default`` when absent."""
    value = options.get(name, default)
    try:
        out = int(str(value).strip())
    except ValueError as exc:
        raise _bad(task, name, value, "an integer") from exc
    if out < low:
        raise _bad(task, name, value, f"an integer >= {low}")
    return out


def opt_float(options: dict[str, Any], task: str, name: str, default: float) -> float:
    """A positive number option, ``default`` when absent."""
    value = options.get(name, default)
    try:
        out = float(str(value).strip())
    except ValueError as exc:
        raise _bad(task, name, value, "a number") from exc
    if not out > 0:
        raise _bad(task, name, value, "a positive number")
    return out


def opt_floats(
    options: dict[str, Any], task: str, name: str, default: tuple[float, ...]
) -> tuple[float, ...]:
    """A comma-separated list of positive numbers (or a list), ``default`` when absent."""
    value = options.get(name, default)
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(float(str(p).strip()) for p in parts if str(p).strip())
    except ValueError as exc:
        raise _bad(task, name, value, "comma-separated numbers") from exc
    if not out or any(not v > 0 for v in out):
        raise _bad(task, name, value, "comma-separated positive numbers")
    return out


def opt_str(
    options: dict[str, Any], task: str, name: str, default: str, choices: tuple[str, ...]
) -> str:
    """One of ``choices``, ``default`` when absent."""
    value = str(options.get(name, default)).strip()
    if value not in choices:
        raise _bad(task, name, value, " or ".join(choices))
    return value


def opt_path(options: dict[str, Any], name: str) -> Path | None:
    """A path option (``~`` expanded), ``None`` when absent."""
    value = options.get(name)
    return None if value in (None, "") else Path(str(value)).expanduser()

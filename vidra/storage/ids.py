"""Record ids that sort by creation time, and the key that groups episodes by question."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vidra.storage.records import invalid_input

__all__ = ["new_id", "question_key", "validate"]

R = TypeVar("R", bound=BaseModel)
_last_ns = 0
_id_lock = threading.Lock()


def new_id() -> str:
    """32 hex digits that sort by creation time (like UUIDv7): nanoseconds + 64 random bits."""
    global _last_ns
    with _id_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        now = _last_ns
    return f"{now:016x}{secrets.token_hex(8)}"


def validate(cls: type[R], value: R | dict[str, Any], what: str) -> R:
    """``value`` as a ``cls`` record; `InvalidInput` naming every bad field."""
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        raise invalid_input(exc, what) from exc


def question_key(content_hash: str, question: str, options: Sequence[str] | None) -> str:
    """Episodes with the same key answer the same question about the same video content."""
    raw = json.dumps([content_hash, question.strip(), list(options or [])])
    return hashlib.sha1(raw.encode()).hexdigest()

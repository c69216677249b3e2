"""Row <-> record conversion: compact arrays for tokens and logprobs, text truncation rule.

Token ids are little-endian int32 and logprobs little-endian float64, so both round-trip
exactly; `truncate` implements the documented rule in `vidra.storage.records`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["decode_ids", "decode_logprobs", "encode_ids", "encode_logprobs", "truncate"]


def encode_ids(ids: Sequence[int]) -> bytes:
    return np.asarray(ids, dtype="<i4").tobytes()


def decode_ids(data: bytes) -> list[int]:
    return np.frombuffer(data, dtype="<i4").tolist()


def encode_logprobs(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def decode_logprobs(data: bytes) -> list[float]:
    return np.frombuffer(data, dtype="<f8").tolist()


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` chars plus ``"…[truncated N chars]"``, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]", True

"""The ``scripted`` backend: replays given outputs. For orchestration unit tests only;
never a stand-in where a test claims a model ran.

Token ids are the UTF-8 bytes of the text and every logprob is 0.0 (probability 1), so
trajectories recorded from it have the same shape as real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from vidra.errors import InvalidInput
from vidra.models.protocol import ChatRequest, Completion

__all__ = ["ScriptedChatModel"]

Script = Sequence[str] | dict[str, Sequence[str]] | Callable[[ChatRequest], str]


class ScriptedChatModel:
    """Answer requests from a script.

    Args:
        script: a list of outputs used in order; or per-adapter lists (key ``"base"`` for no
            adapter); or a function of the request.
        latency_s: seconds each completion pretends to take (0: none).
    """

    name = "scripted"

    def __init__(self, script: Script, latency_s: float = 0.0) -> None:
        self.script = script
        self.latency_s = latency_s
        self.calls: list[ChatRequest] = []
        self._cursor: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:  # picklable (e.g. shipped to a Ray actor)
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        """Roles with their own script (they are asked with their adapter name)."""
        return (
            sorted(k for k in self.script if k != "base") if isinstance(self.script, dict) else []
        )

    def _next(self, req: ChatRequest) -> str:
        if callable(self.script):
            return self.script(req)
        key = req.adapter or "base"
        outputs = self.script.get(key, ()) if isinstance(self.script, dict) else self.script
        with self._lock:
            k = self._cursor.get(key, 0)
            self._cursor[key] = k + 1
        if k >= len(outputs):
            raise InvalidInput(f"the script has no output #{k + 1} for adapter {key!r}")
        return outputs[k]

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for i, req in enumerate(requests):
            self.calls.append(req)
            for k in range(req.sampling.n):
                text = self._next(req)
                if self.latency_s:
                    time.sleep(self.latency_s)
                ids = list(text.encode())
                out.append(
                    Completion(
                        text=text,
                        token_ids=ids,
                        logprobs=[0.0] * len(ids),
                        finish_reason="stop",
                        prompt_tokens=0,
                        completion_tokens=len(ids),
                        latency_s=self.latency_s,
                        adapter=req.adapter,
                        adapter_version="scripted",
                        request_index=i,
                        sample_index=k,
                    )
                )
        return out

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        return [[0.0] * len(c.token_ids) for c in completions]

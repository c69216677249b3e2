"""Dynamic batching across concurrent callers: `BatchingChatModel` puts the ``generate``
requests of concurrent episodes into one call of the wrapped model (up to ``max_batch``
requests, waiting at most ``max_wait_s`` for company), and hands each caller its own
completions back. The wrapped backend batches what it can (the ``hf`` backend: requests of
one adapter and sampling, prefixed ones too; vLLM: the whole list at once); sampled tokens
and their logprobs are the same as unbatched (tested at temperature 0).

Knows nothing of roles or episodes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from vidra.errors import InvalidInput
from vidra.models.protocol import ChatModel, ChatRequest, Completion

__all__ = ["BatchingChatModel", "ServingStats"]


@dataclass
class ServingStats:
    """Counters of a batching model (read them as deltas)."""

    calls: int = 0  # generate calls of the wrapped model
    requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class BatchingChatModel:
    """A `ChatModel` that batches concurrent ``generate`` calls into the wrapped model.

    Args:
        model: the model doing the work.
        max_batch: most requests per call of ``model``.
        max_wait_s: how long the first request of a batch waits for more.
    """

    def __init__(self, model: ChatModel, max_batch: int = 16, max_wait_s: float = 0.005) -> None:
        self.model = model
        self.name = model.name
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.stats = ServingStats()
        self._queue: queue.Queue[tuple[list[ChatRequest], Future[list[Completion]]] | None] = (
            queue.Queue()
        )
        self._closed = False
        self._closing = threading.Lock()  # nothing is queued after the stop sentinel
        self._thread = threading.Thread(target=self._serve, name="vidra-batcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the batching thread (it holds the wrapped model) after the requests already
        queued; a later ``generate`` raises `InvalidInput`. Idempotent."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def adapters(self) -> list[str]:
        return list(self.model.adapters)

    def __getattr__(self, name: str) -> Any:  # adapter loading, versions, ... of the backend
        return getattr(self.__dict__["model"], name)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if not requests:
            return []
        fut: Future[list[Completion]] = Future()
        with self._closing:
            if self._closed:
                raise InvalidInput("this model was closed (its runtime or client is closed): "
                                   "open a new one")  # fmt: skip
            self._queue.put((list(requests), fut))
        return fut.result()

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        return self.model.score(requests, completions)

    def _take(self) -> list[tuple[list[ChatRequest], Future[list[Completion]]]] | None:
        """The next batch; None once `close` was called and the queue holds nothing else."""
        first = self._queue.get()
        if first is None:
            return None
        batch, size = [first], len(first[0])
        until = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            left = until - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # closing: serve this batch, then stop
                self._queue.put(None)
                break
            batch.append(item)
            size += len(item[0])
        return batch

    def _serve(self) -> None:
        while (batch := self._take()) is not None:
            flat = [r for reqs, _ in batch for r in reqs]
            try:
                out = self.model.generate(flat)
            except BaseException as exc:  # every caller of the batch gets the error
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            self.stats.calls += 1
            self.stats.requests += len(flat)
            self.stats.batch_sizes.append(len(flat))
            at = 0
            for reqs, fut in batch:
                count = sum(r.sampling.n for r in reqs)
                mine = out[at : at + count]
                at += count
                owner = [i for i, r in enumerate(reqs) for _ in range(r.sampling.n)]
                fut.set_result(
                    [Completion(**{**c.__dict__, "request_index": i}) for c, i in zip(mine, owner,
                                                                                      strict=True)]
                )  # fmt: skip

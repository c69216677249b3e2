"""``executor="ray"``: episodes run as Ray tasks; the model lives in a Ray actor shared by
all jobs (local Ray, or a cluster at ``runner.ray_address``).

The driver keeps the job bookkeeping (status, events); each task opens its own store,
reader and checkpointer from the settings, so a cluster node needs only the settings.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable
from vidra.models.protocol import ChatModel, ChatRequest, Completion
from vidra.ray_session import ensure_ray

__all__ = ["RayJobRunner", "RemoteChatModel"]

log = logging.getLogger(__name__)


class RemoteChatModel:
    """A `ChatModel` whose calls go to a Ray actor holding the real model."""

    name = "ray"

    def __init__(self, actor: Any, adapters: Sequence[str]) -> None:
        self.actor = actor
        self._adapters = list(adapters)

    @property
    def adapters(self) -> list[str]:
        return self._adapters

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        import ray

        return list(ray.get(self.actor.generate.remote(list(requests))))

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        import ray

        return list(ray.get(self.actor.score.remote(list(requests), list(completions))))


class _ModelServer:
    """Ray actor body: holds one model (built from settings, or a given picklable model)."""

    def __init__(self, settings_json: str, model: ChatModel | None) -> None:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        if model is None:
            from vidra.models import load_chat_model

            model = load_chat_model(Settings.model_validate_json(settings_json))
        self.model = model

    def adapters(self) -> list[str]:
        return list(getattr(self.model, "adapters", []) or [])

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        return self.model.generate(requests)

    def score(
        self, requests: list[ChatRequest], completions: list[Completion]
    ) -> list[list[float]]:
        return self.model.score(requests, completions)


def _episode_task(
    settings_json: str, job_id: str, rollout: int, actor: Any, adapters: list[str]
) -> str:
    """Ray task: run (or resume) one rollout and record it; returns the episode id."""
    from vidra.api import Client
    from vidra.graph.checkpoint import open_checkpointer
    from vidra.graph.graph import build_graph
    from vidra.graph.runner import run_episode

    settings = Settings.model_validate_json(settings_json)
    client = Client(settings, model=RemoteChatModel(actor, adapters))
    try:
        job = client.store.get_job(job_id)
        with open_checkpointer(settings) as saver:
            return run_episode(
                build_graph(saver),
                client.store,
                job,
                rollout,
                client._deps(job, rollout),
                client._facts(job),
                checkpointer=saver,
            )
    finally:
        client.close()


class RayJobRunner:
    """Same interface as `JobRunner`; episodes are Ray tasks, the model a Ray actor."""

    def __init__(self, store: Any, settings: Settings, model: ChatModel | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BackendUnavailable("ray", "ray", str(exc)) from exc
        self.store = store
        self.settings = settings
        self._settings_json = settings.model_dump_json()
        ensure_ray(settings)
        actor_cls: Any = ray.remote(num_cpus=0)(_ModelServer)
        self.actor: Any = actor_cls.remote(self._settings_json, model)
        self.adapters = ray.get(self.actor.adapters.remote())
        self.task = ray.remote(num_cpus=0.5)(_episode_task)
        self.pool = ThreadPoolExecutor(
            max_workers=settings.runner.workers, thread_name_prefix="vidra-ray-job"
        )
        self.futures: dict[str, Future[None]] = {}
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.refs: dict[str, list[Any]] = {}
        self.cancelled: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, job_id: str) -> Future[None]:
        with self._lock:
            if job_id in self.futures and not self.futures[job_id].done():
                return self.futures[job_id]
            self.queues.setdefault(job_id, queue.Queue())
            self.futures[job_id] = self.pool.submit(self._run_job, job_id)
            return self.futures[job_id]

    def events(self, job_id: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self.queues.setdefault(job_id, queue.Queue())

    def cancel(self, job_id: str) -> None:
        import ray

        with self._lock:
            self.cancelled.add(job_id)
            refs = list(self.refs.get(job_id, []))
        for ref in refs:
            ray.cancel(ref, force=True)

    def _run_job(self, job_id: str) -> None:
        import ray

        from vidra.graph.deps import JobCancelled
        from vidra.graph.runner import begin_job

        emit: Callable[[dict[str, Any]], None] = self.events(job_id).put
        try:
            started = begin_job(self.store, job_id)
            if started is None:
                return
            if job_id in self.cancelled:
                raise JobCancelled("the job was cancelled")
            refs = [
                self.task.remote(self._settings_json, job_id, r, self.actor, self.adapters)
                for r in started[1]
            ]
            with self._lock:
                self.refs[job_id] = refs
            for ref in refs:
                emit({"type": "episode", "episode_id": ray.get(ref)})
                if job_id in self.cancelled:
                    raise JobCancelled("the job was cancelled")
            self.store.set_job_status(job_id, "done")
        except Exception as exc:
            cancelled = job_id in self.cancelled
            status = "cancelled" if cancelled else "failed"
            log.log(
                logging.INFO if cancelled else logging.ERROR, "job %s %s: %s", job_id, status, exc
            )
            try:
                self.store.set_job_status(job_id, status, error=str(exc)[:2000])
            except Exception:
                log.exception("could not mark job %s %s", job_id, status)
            emit({"type": status, "error": str(exc)})
        finally:
            emit({"type": "job_done"})

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)

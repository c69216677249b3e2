"""``executor="ray"``: jobs run on a pool of Ray episode-worker actors; the model lives in a
model-server actor shared by all of them (local Ray, or a cluster at ``runner.ray_address``).

Each worker builds its components once, from the settings, for its whole life (store
engine, frame reader with its cache, checkpointer, compiled graph) through the factory the
composition root hands in, so the G rollouts of a job decode each shared frame once, as in
process. A job runs on one worker (``execute_job``, with the worker's own lease); its events
stream back to the driver as they happen (a Ray streaming generator).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable
from vidra.graph.episode import Emit
from vidra.graph.executor import DONE, JobBook, JobContext, LeaseKeeper, execute_job
from vidra.models.protocol import ChatModel, ChatRequest, Completion
from vidra.ray_session import ensure_ray

__all__ = ["RayExecutor", "RayJobRunner", "RemoteChatModel"]

log = logging.getLogger(__name__)

ModelFactory = Callable[[str], ChatModel]
"""Builds the served model from the settings (JSON): the composition root's `build_model`."""
ContextFactory = Callable[[str, ChatModel, str], JobContext]
"""Builds a worker's job context from the settings (JSON), the remote model and a worker id."""


class RemoteChatModel:
    """A `ChatModel` whose calls go to model-server actors (replicas, round-robin); each
    actor batches the calls of concurrent episodes (``serving.max_batch``)."""

    name = "ray"

    def __init__(self, actors: Any, adapters: Sequence[str]) -> None:
        self.actors = list(actors) if isinstance(actors, list | tuple) else [actors]
        self._adapters = list(adapters)
        self._next = itertools.count()

    @property
    def adapters(self) -> list[str]:
        return self._adapters

    def _actor(self) -> Any:
        return self.actors[next(self._next) % len(self.actors)]

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        import ray

        return list(ray.get(self._actor().generate.remote(list(requests))))

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        import ray

        return list(ray.get(self._actor().score.remote(list(requests), list(completions))))


class _ModelServer:
    """Ray actor body: holds one model (built by the factory, or a given picklable model)."""

    def __init__(self, settings_json: str, factory: ModelFactory, model: ChatModel | None) -> None:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        if model is None:
            self.model = factory(settings_json)
        else:  # a given model is served behind the same batching
            from vidra.models.serving import BatchingChatModel

            sv = Settings.model_validate_json(settings_json).serving
            batched = sv.max_batch > 1 and model.name != "scripted"
            self.model = BatchingChatModel(model, sv.max_batch, sv.max_wait_s) if batched else model

    def adapters(self) -> list[str]:
        return list(self.model.adapters)

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        return self.model.generate(requests)

    def score(
        self, requests: list[ChatRequest], completions: list[Completion]
    ) -> list[list[float]]:
        return self.model.score(requests, completions)


class _EpisodeWorker:
    """Ray actor body: runs whole jobs with components built once for the actor's life."""

    def __init__(
        self,
        settings_json: str,
        factory: ContextFactory,
        model_actors: list[Any],
        adapters: list[str],
        owner: str,
        lease_s: float,
    ) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()
        self.worker = f"ray:{node[:12]}:{os.getpid()}"
        self.ctx = factory(settings_json, RemoteChatModel(model_actors, adapters), self.worker)
        self.owner, self.lease_s = owner, lease_s
        self.lease = LeaseKeeper(self.ctx.store, owner, lease_s)
        self.cancels: dict[str, threading.Event] = {}

    def node(self) -> str:
        return self.worker

    def decode_stats(self) -> Any:
        return self.ctx.reader.stats

    def cancel(self, job_id: str) -> None:
        self.cancels.setdefault(job_id, threading.Event()).set()

    def run(self, job_id: str) -> Iterator[list[dict[str, Any]]]:
        """Run one job; yields its events as they happen (those already queued together,
        one stream item for a burst), then ``job_done`` (or the exception that interrupted
        it, as an ``{"type": "raise"}`` event)."""
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        cancel = self.cancels.setdefault(job_id, threading.Event())
        errors: list[BaseException] = []

        def body() -> None:
            try:
                execute_job(
                    self.ctx, job_id, self.owner, self.lease, cancel, events.put, self.lease_s
                )
            except BaseException as exc:
                errors.append(exc)
                events.put(dict(DONE))

        thread = threading.Thread(target=body, name=f"vidra-job-{job_id[:8]}", daemon=True)
        thread.start()
        done = False
        while not done:
            burst = [events.get()]
            while not events.empty():
                burst.append(events.get_nowait())
            done = DONE in burst
            burst = [e for e in burst if e != DONE]
            if burst:
                yield burst
        thread.join()
        self.cancels.pop(job_id, None)
        if errors:
            yield [{"type": "raise", "error": errors[0]}]


class RayExecutor(JobBook):
    """The `Executor` on Ray: ``runner.workers`` episode-worker actors, one model server.

    Args:
        settings: what every worker builds its components from.
        model_factory: builds the served model from the settings JSON (on the model actor).
        context_factory: builds a worker's job context (on each episode worker).
        model: a ready picklable model to serve instead of building one.
    """

    def __init__(
        self,
        settings: Settings,
        model_factory: ModelFactory,
        context_factory: ContextFactory,
        model: ChatModel | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BackendUnavailable("ray", "ray", str(exc)) from exc
        r = settings.runner
        super().__init__(r.workers * r.jobs_per_worker, "vidra-ray-job")
        ensure_ray(settings)
        settings_json = settings.model_dump_json()
        server: Any = ray.remote(num_cpus=0)(_ModelServer)
        concurrent = max(2, settings.serving.max_batch)  # threads wait together in a batch
        self.model_actors = [
            server.options(resources=dict(r.model_resources), max_concurrency=concurrent).remote(
                settings_json, model_factory, model
            )
            for _ in range(settings.serving.replicas)
        ]
        self.model_actor = self.model_actors[0]
        adapters = ray.get(self.model_actor.adapters.remote())
        worker_cls: Any = ray.remote(num_cpus=r.worker_cpus)(_EpisodeWorker)
        n_workers = placeable_workers(
            r.workers, r.worker_cpus, dict(r.episode_resources), ray.cluster_resources()
        )
        self.workers = [
            worker_cls.options(
                max_concurrency=r.jobs_per_worker + 1, resources=dict(r.episode_resources)
            ).remote(
                settings_json, context_factory, self.model_actors, adapters,
                f"{self.owner}/w{k}", r.lease_s,
            )
            for k in range(n_workers)
        ]  # fmt: skip
        self._next = itertools.cycle(range(len(self.workers)))
        self._assigned: dict[str, Any] = {}

    def nodes(self) -> list[str]:
        """Each episode worker's ``ray:<node id>:<pid>`` (what episodes record as ``worker``)."""
        import ray

        return list(ray.get([w.node.remote() for w in self.workers]))

    def decode_stats(self) -> list[Any]:
        """Each episode worker's decoder counters (`DecodeStats`)."""
        import ray

        return list(ray.get([w.decode_stats.remote() for w in self.workers]))

    def submit(self, job_id: str) -> Future[None]:
        def body(job_id: str, cancel: threading.Event, emit: Emit) -> None:
            worker = self.workers[next(self._next)]
            self._assigned[job_id] = worker
            if cancel.is_set():
                worker.cancel.remote(job_id)
            _relay(worker.run.remote(job_id), emit)

        return self.start(job_id, body)

    def cancel(self, job_id: str) -> None:
        super().cancel(job_id)
        worker = self._assigned.get(job_id)
        if worker is not None:
            worker.cancel.remote(job_id)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        import ray

        for actor in [*self.workers, *self.model_actors]:
            ray.kill(actor)


def placeable_workers(
    wanted: int, cpus: float, resources: dict[str, float], cluster: dict[str, float]
) -> int:
    """How many episode workers the cluster can hold at once (at least 1): jobs are dealt
    round-robin, so a worker that can never be placed would hold its jobs forever."""
    fits = [int(cluster.get("CPU", 0.0) // cpus)] if cpus > 0 else []
    fits += [int(cluster.get(k, 0.0) // v) for k, v in resources.items() if v > 0]
    n = max(1, min([wanted, *fits]))
    if n < wanted:
        log.warning(
            "%d episode workers asked for (%s CPU each%s) but the cluster holds %d; using %d "
            "(VIDRA_RUNNER__WORKERS, VIDRA_RUNNER__WORKER_CPUS)", wanted, cpus,
            f", {resources}" if resources else "", n, n,
        )  # fmt: skip
    return n


def _relay(stream: Any, emit: Emit) -> None:
    """Forward a worker's event stream; re-raise what interrupted the job there."""
    import ray

    try:
        for ref in stream:
            for event in ray.get(ref):
                if event.get("type") == "raise":
                    raise event["error"]
                emit(event)
    finally:
        emit(dict(DONE))


RayJobRunner = RayExecutor  # the name the package exported before executors had a protocol

"""Executors run jobs: the one job body (`execute_job`), the bookkeeping every executor shares
(`JobBook`: futures, event queues, cancel flags, leases), and the in-process thread pool.

A job runs under a lease held by the process that runs it (renewed by `LeaseKeeper`), so two
processes never run one job. A job interrupted by the database (down, disk full) is left
resumable rather than failed; its future carries the cause, so `Job.result` always ends.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from vidra.errors import (
    DatabaseUnavailable,
    DiskFull,
    IllegalTransition,
    JobCancelled,
    StorageError,
)
from vidra.graph.deps import Deps
from vidra.graph.episode import Emit, run_episode
from vidra.storage import JobRecord, TrajectoryStore
from vidra.storage.db import database_error
from vidra.video.decoders import FrameSource

__all__ = [
    "Executor",
    "JobBook",
    "JobContext",
    "JobRunner",
    "LeaseKeeper",
    "LocalExecutor",
    "execute_job",
    "new_owner",
]

log = logging.getLogger(__name__)
DONE = {"type": "job_done"}
INTERRUPTED = (DatabaseUnavailable, DiskFull)


class JobContext(Protocol):
    """What running a job needs; the composition root (`vidra.runtime.Runtime`) provides it."""

    @property
    def store(self) -> TrajectoryStore: ...

    @property
    def graph(self) -> Any: ...

    @property
    def reader(self) -> FrameSource: ...

    @property
    def checkpointer(self) -> Any: ...

    def deps(self, job: JobRecord, rollout: int) -> Deps: ...

    def facts(self, job: JobRecord) -> dict[str, Any]: ...

    def prepare(self, job: JobRecord) -> None:
        """Work a job's episodes share, done once before them (e.g. the video's index)."""
        ...


class Executor(Protocol):
    """Where jobs run: the local thread pool, or Ray (`vidra.graph.ray_runner`)."""

    owner: str

    def submit(self, job_id: str) -> Future[None]: ...

    def cancel(self, job_id: str) -> None: ...

    def events(self, job_id: str) -> queue.Queue[dict[str, Any]]: ...

    def future(self, job_id: str) -> Future[None] | None: ...

    def shutdown(self, wait: bool = True) -> None: ...


def new_owner() -> str:
    """A lease owner id for this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Renews the leases of the jobs this process runs, every ``lease_s / 4`` seconds."""

    def __init__(self, store: TrajectoryStore, owner: str, lease_s: float) -> None:
        self.store, self.owner, self.lease_s = store, owner, lease_s
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidra-lease", daemon=True)
        self._thread.start()

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._held.add(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            with self._lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                self.store.heartbeat(self.owner, held)
            except Exception as exc:  # the job itself reports the outage; keep trying
                log.warning("lease heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()


def execute_job(
    ctx: JobContext,
    job_id: str,
    owner: str,
    lease: LeaseKeeper,
    cancel: threading.Event,
    emit: Emit,
    lease_s: float,
) -> None:
    """Claim ``job_id``, run its unrecorded rollouts, and mark it done, cancelled or failed.

    Raises:
        DatabaseUnavailable, DiskFull: the job was interrupted and left resumable (it could
            not be marked failed, and must not be); `Job.result` re-raises this.
    """
    store = ctx.store
    try:
        job = store.claim_job(job_id, owner, lease_s)
        if job is None:
            current = store.get_job(job_id)
            emit({"type": "skipped", "status": current.status, "owner": current.owner})
            return
        lease.hold(job_id)
        try:
            _run_rollouts(ctx, job, cancel, emit)
            store.set_job_status(job_id, "done", owner=owner)
        finally:
            lease.release(job_id)
    except JobCancelled:
        store.set_job_status(job_id, "cancelled", error="cancelled by the user", owner=owner)
        emit({"type": "cancelled"})
    except INTERRUPTED as exc:
        _leave_resumable(store, job_id, owner, exc)
        emit({"type": "interrupted", "error": str(exc)})
        raise
    except IllegalTransition as exc:  # taken over by another process after a lost lease
        emit({"type": "failed", "error": str(exc)})
        raise
    except Exception as exc:
        translated = database_error(exc, store.db.display)
        if isinstance(translated, INTERRUPTED):  # a checkpoint write hit the outage
            _leave_resumable(store, job_id, owner, translated)
            emit({"type": "interrupted", "error": str(translated)})
            raise translated from exc
        log.exception("job %s failed", job_id)
        _mark_failed(store, job_id, owner, exc)
        emit({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        emit(dict(DONE))


def _run_rollouts(ctx: JobContext, job: JobRecord, cancel: threading.Event, emit: Emit) -> None:
    done = {e.rollout_index for e in ctx.store.episodes_of_job(job.id)}
    if len(done) < job.rollouts:
        ctx.prepare(job)
    facts = ctx.facts(job)
    for rollout in range(job.rollouts):
        if rollout in done:
            continue
        deps = ctx.deps(job, rollout)
        deps.cancel = cancel
        deps.check_cancelled()
        run_episode(ctx.graph, ctx.store, job, rollout, deps, facts, emit, ctx.checkpointer)


def _leave_resumable(store: TrajectoryStore, job_id: str, owner: str, exc: Exception) -> None:
    """Put the job back in the queue if the database still takes a small write; otherwise it
    stays ``running`` and its lease expires: either way `vidra resume` finishes it."""
    log.error("job %s interrupted (resumable): %s", job_id, exc)
    try:
        store.set_job_status(job_id, "queued", error=f"interrupted: {exc}"[:2000], owner=owner)
    except Exception as again:
        log.warning("job %s stays running until its lease expires: %s", job_id, again)


def _mark_failed(store: TrajectoryStore, job_id: str, owner: str, exc: Exception) -> None:
    try:
        store.set_job_status(
            job_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000], owner=owner
        )
    except StorageError:
        log.exception("could not mark job %s failed", job_id)
        raise exc from None


class JobBook:
    """The bookkeeping every executor shares: one future, event queue and cancel flag per
    job, a lease owner id for this process, and submit-once semantics."""

    def __init__(self, workers: int, name: str) -> None:
        self.owner = new_owner()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self.futures: dict[str, Future[None]] = {}
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(
        self, job_id: str, body: Callable[[str, threading.Event, Emit], None]
    ) -> Future[None]:
        """Run ``body(job_id, cancel, emit)`` on the pool unless it already runs here."""
        with self._lock:
            running = self.futures.get(job_id)
            if running is not None and not running.done():
                return running
            events = self.queues.get(job_id)
            if running is not None or events is None:  # a new run gets a fresh event queue
                events = self.queues[job_id] = queue.Queue()
            cancel = self.cancels.setdefault(job_id, threading.Event())
            fut = self.pool.submit(body, job_id, cancel, events.put)
            self.futures[job_id] = fut
            return fut

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.cancels.setdefault(job_id, threading.Event()).set()

    def events(self, job_id: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self.queues.setdefault(job_id, queue.Queue())

    def future(self, job_id: str) -> Future[None] | None:
        with self._lock:
            return self.futures.get(job_id)

    def shutdown(self, wait: bool = True) -> None:
        if not wait:
            with self._lock:
                for ev in self.cancels.values():
                    ev.set()
        self.pool.shutdown(wait=wait)


class LocalExecutor(JobBook):
    """Runs jobs on a thread pool in this process; each job's rollouts run one after another.

    Args:
        ctx: the job context (store, graph with its checkpointer, deps and facts per job).
        workers: jobs that run at once.
        lease_s: lease duration (renewed every ``lease_s / 4``).
    """

    def __init__(self, ctx: JobContext, workers: int = 2, lease_s: float = 30.0) -> None:
        super().__init__(workers, "vidra-job")
        self.ctx = ctx
        self.lease_s = lease_s
        self.lease = LeaseKeeper(ctx.store, self.owner, lease_s)

    def submit(self, job_id: str) -> Future[None]:
        def body(job_id: str, cancel: threading.Event, emit: Emit) -> None:
            execute_job(self.ctx, job_id, self.owner, self.lease, cancel, emit, self.lease_s)

        return self.start(job_id, body)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self.lease.stop()


JobRunner = LocalExecutor  # the name the package exported before executors had a protocol

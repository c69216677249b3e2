"""The job runner: runs a job's G rollouts through the episode graph and records each
episode (steps + rewards) in one transaction. In-process thread pool by default.

Resuming is the normal path: a rollout already recorded is skipped, and one with a
checkpoint continues from it, so after a crash no step is recorded twice or lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from vidra.errors import StorageError, VidraError
from vidra.graph.checkpoint import thread_id
from vidra.graph.deps import Deps, JobCancelled
from vidra.graph.graph import build_graph
from vidra.graph.state import Budget, initial_state
from vidra.storage import EpisodeIn, JobRecord, TrajectoryStore

__all__ = ["JobRunner", "begin_job", "run_episode"]

log = logging.getLogger(__name__)
DONE = {"type": "job_done"}


def rollout_seed(job_id: str, rollout: int) -> int:
    return int(hashlib.sha1(f"{job_id}:{rollout}".encode()).hexdigest()[:8], 16)


def run_episode(
    graph: Any,
    store: TrajectoryStore,
    job: JobRecord,
    rollout: int,
    deps: Deps,
    video_facts: dict[str, Any],
    emit: Callable[[dict[str, Any]], None] = lambda e: None,
    checkpointer: Any = None,
) -> str:
    """Run (or resume) one rollout of ``job`` and record it; returns the episode id."""
    config = {"configurable": {"thread_id": thread_id(job.id, rollout)}}
    if checkpointer is None:
        raise VidraError("run_episode needs a checkpointer (resume reads the episode state)")
    snapshot = graph.get_state(config)
    started = time.perf_counter()
    values = snapshot.values if snapshot is not None else None
    if values and values.get("final") is None and not snapshot.next:
        # a checkpoint that neither finished nor has work left cannot be trusted: start over
        log.warning(
            "rollout %s of job %s: stale checkpoint, restarting the episode", rollout, job.id
        )
        checkpointer.delete_thread(thread_id(job.id, rollout))
        values = None
    if values:
        inp: Any = None  # resume from the last checkpoint (or record a finished episode)
        if snapshot.next:
            emit({"type": "resumed", "rollout": rollout, "next": list(snapshot.next)})
    else:
        budget = Budget(
            max_rounds=int(job.budget["max_rounds"]),
            max_frames=int(job.budget["max_frames"]),
            frames_per_round=int(job.budget["frames_per_round"]),
            deadline_s=float(job.budget["deadline_s"]),
        )
        inp = initial_state(
            job_id=job.id,
            rollout=rollout,
            question=job.question,
            options=job.options,
            truth=job.answer,
            budget=budget,
            now=time.time(),
            **video_facts,
        )
    if inp is not None or snapshot.next:
        # durability="sync": each step's checkpoint is on disk before the next step starts
        for update in graph.stream(
            inp, config, context=deps, stream_mode="updates", durability="sync"
        ):
            for node, change in update.items():
                emit(
                    {
                        "type": "step",
                        "rollout": rollout,
                        "node": node,
                        "summary": _summary(node, change or {}),
                    }
                )
    state = graph.get_state(config).values
    if state.get("final") is None:
        raise VidraError(
            f"rollout {rollout} of job {job.id} ended without a final answer; "
            "it was not recorded (run `vidra resume` to retry)"
        )
    final = state["final"] or {}
    episode = EpisodeIn(
        job_id=job.id,
        rollout_index=rollout,
        group_id=job.id,
        answer=final.get("answer"),
        choice=final.get("choice"),
        confidence=final.get("confidence"),
        frames_used=len(state["seen"]),
        rounds=state["rounds"],
        latency_s=time.perf_counter() - started,
        thread_id=thread_id(job.id, rollout),
        steps=[{"order": k, **step} for k, step in enumerate(state["steps"])],
        rewards=state["rewards"],
    )
    try:
        episode_id = store.record_episode(episode)
    except StorageError:
        recorded = [e for e in store.episodes_of_job(job.id) if e.rollout_index == rollout]
        if not recorded:
            raise
        episode_id = recorded[0].id  # recorded by an earlier run that died before cleanup
    checkpointer.delete_thread(thread_id(job.id, rollout))
    emit(
        {
            "type": "episode",
            "rollout": rollout,
            "episode_id": episode_id,
            "final": final,
            "rewards": {r["name"]: r["value"] for r in state["rewards"]},
        }
    )
    return episode_id


def begin_job(store: TrajectoryStore, job_id: str) -> tuple[JobRecord, list[int]] | None:
    """Mark a queued job running; return it with the rollouts still to run (None: not runnable)."""
    job = store.get_job(job_id)
    if job.status == "queued":
        job = store.set_job_status(job_id, "running")
    if job.status != "running":
        return None
    done = {e.rollout_index for e in store.episodes_of_job(job_id)}
    return job, [r for r in range(job.rollouts) if r not in done]


def _summary(node: str, change: dict[str, Any]) -> str:
    if node == "plan" and change.get("plan"):
        return f"look for {change['plan'].get('look_for', '')!r}"
    if node == "select_frames":
        return f"{len(change.get('latest', []))} new frames"
    if node == "reason" and change.get("answers"):
        a = change["answers"][-1]
        return f"answer {a['answer']!r} (confidence {a['confidence']:.2f})"
    if node == "critique" and change.get("critiques"):
        c = change["critiques"][-1]
        return f"{c['decision']} (score {c['score']:.2f})"
    if node == "finalize" and change.get("final"):
        return f"final {change['final'].get('answer')!r}"
    return node


class JobRunner:
    """Runs jobs on a thread pool; each job's rollouts run one after another.

    Args:
        store: the trajectory store.
        make_deps: builds the graph dependencies for a job and rollout.
        checkpointer: a LangGraph checkpointer (SQLite or Postgres saver).
        workers: jobs that run at once.
    """

    def __init__(
        self,
        store: TrajectoryStore,
        make_deps: Callable[[JobRecord, int], Deps],
        video_facts: Callable[[JobRecord], dict[str, Any]],
        checkpointer: Any,
        workers: int = 2,
    ) -> None:
        self.store = store
        self.make_deps = make_deps
        self.video_facts = video_facts
        self.checkpointer = checkpointer
        self.graph = build_graph(checkpointer)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidra-job")
        self.futures: dict[str, Future[None]] = {}
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(self, job_id: str) -> Future[None]:
        with self._lock:
            if job_id in self.futures and not self.futures[job_id].done():
                return self.futures[job_id]
            self.queues.setdefault(job_id, queue.Queue())
            self.cancels.setdefault(job_id, threading.Event())
            fut = self.pool.submit(self._run_job, job_id)
            self.futures[job_id] = fut
            return fut

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.cancels.setdefault(job_id, threading.Event()).set()

    def events(self, job_id: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self.queues.setdefault(job_id, queue.Queue())

    def _run_job(self, job_id: str) -> None:
        emit = self.events(job_id).put
        try:
            started = begin_job(self.store, job_id)
            if started is None:
                return
            job, pending = started
            facts = self.video_facts(job)
            for rollout in pending:
                deps = self.make_deps(job, rollout)
                deps.cancel = self.cancels[job_id]
                run_episode(
                    self.graph, self.store, job, rollout, deps, facts, emit, self.checkpointer
                )
            self.store.set_job_status(job_id, "done")
        except JobCancelled:
            self.store.set_job_status(job_id, "cancelled", error="cancelled by the user")
            emit({"type": "cancelled"})
        except Exception as exc:
            log.exception("job %s failed", job_id)
            with contextlib.suppress(VidraError):
                self.store.set_job_status(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
            emit({"type": "failed", "error": str(exc)})
        finally:
            emit(dict(DONE))

    def shutdown(self, wait: bool = True) -> None:
        for ev in self.cancels.values():
            if not wait:
                ev.set()
        self.pool.shutdown(wait=wait)

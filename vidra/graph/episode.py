"""One rollout of a job through the episode graph, recorded in one transaction.

Resuming is the normal path: a rollout already recorded is skipped by the caller, one with a
checkpoint continues from it, and a stale checkpoint (neither finished nor with work left) is
dropped and the rollout restarted, so after a crash no step is recorded twice or lost.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from vidra.errors import StorageError, VidraError
from vidra.graph.checkpoint import thread_id
from vidra.graph.deps import Deps
from vidra.graph.state import Budget, initial_state
from vidra.storage import EpisodeIn, JobRecord, TrajectoryStore

__all__ = ["Emit", "rollout_seed", "run_episode"]

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], None]


def rollout_seed(key: str, rollout: int) -> int:
    """The sampling seed of one rollout of a job: stable across resumes and processes.
    ``key`` is the job id, or with ``agents.seed`` that seed and what the job asks of which
    video's content (`Runtime.sampling_key`)."""
    return int(hashlib.sha1(f"{key}:{rollout}".encode()).hexdigest()[:8], 16)


def _start_input(job: JobRecord, rollout: int, video_facts: dict[str, Any]) -> dict[str, Any]:
    b = job.budget
    budget = Budget(
        max_rounds=int(b["max_rounds"]),
        max_frames=int(b["max_frames"]),
        frames_per_round=int(b["frames_per_round"]),
        deadline_s=float(b["deadline_s"]),
    )
    state = initial_state(
        job_id=job.id,
        rollout=rollout,
        question=job.question,
        options=job.options,
        truth=job.answer,
        budget=budget,
        now=time.time(),
        evidence=[tuple(e) for e in job.evidence] if job.evidence else None,  # type: ignore[misc]
        subtitles=job.subtitles,
        **video_facts,
    )
    return dict(state)


def _input(
    graph: Any, checkpointer: Any, job: JobRecord, rollout: int, facts: dict[str, Any], emit: Emit
) -> tuple[Any, bool]:
    """What to stream: ``(input, run)``; input None resumes from the checkpoint."""
    config = {"configurable": {"thread_id": thread_id(job.id, rollout)}}
    snapshot = graph.get_state(config)
    values = snapshot.values if snapshot is not None else None
    if values and values.get("final") is None and not snapshot.next:
        log.warning("rollout %s of job %s: stale checkpoint, restarting it", rollout, job.id)
        checkpointer.delete_thread(thread_id(job.id, rollout))
        values = None
    if not values:
        return _start_input(job, rollout, facts), True
    if snapshot.next:
        emit({"type": "resumed", "rollout": rollout, "next": list(snapshot.next)})
    return None, bool(snapshot.next)


def _stream(
    graph: Any, inp: Any, config: dict[str, Any], deps: Deps, rollout: int, emit: Emit
) -> None:
    # durability="sync": each step's checkpoint is on disk before the next step starts
    for update in graph.stream(inp, config, context=deps, stream_mode="updates", durability="sync"):
        for node, change in update.items():
            summary = _summary(node, change or {})
            emit({"type": "step", "rollout": rollout, "node": node, "summary": summary})


def _episode(
    job: JobRecord, rollout: int, state: dict[str, Any], latency: float, worker: str | None
) -> EpisodeIn:
    final = state["final"] or {}
    return EpisodeIn(
        job_id=job.id,
        rollout_index=rollout,
        group_id=job.id,
        answer=final.get("answer"),
        choice=final.get("choice"),
        confidence=final.get("confidence"),
        frames_used=len(state["seen"]),
        rounds=state["rounds"],
        latency_s=latency,
        thread_id=thread_id(job.id, rollout),
        worker=worker,
        steps=[{"order": k, **step} for k, step in enumerate(state["steps"])],
        rewards=state["rewards"],
    )


def _record(store: TrajectoryStore, episode: EpisodeIn) -> str:
    try:
        return store.record_episode(episode)
    except StorageError:
        recorded = [
            e for e in store.episodes_of_job(episode.job_id)
            if e.rollout_index == episode.rollout_index
        ]  # fmt: skip
        if not recorded:
            raise
        return recorded[0].id  # recorded by an earlier run that died before cleanup


def run_episode(
    graph: Any,
    store: TrajectoryStore,
    job: JobRecord,
    rollout: int,
    deps: Deps,
    video_facts: dict[str, Any],
    emit: Emit = lambda e: None,
    checkpointer: Any = None,
) -> str:
    """Run (or resume) one rollout of ``job`` and record it; returns the episode id."""
    if checkpointer is None:
        raise TypeError("run_episode needs the graph's checkpointer (resume reads from it)")
    started = time.perf_counter()
    config = {"configurable": {"thread_id": thread_id(job.id, rollout)}}
    inp, run = _input(graph, checkpointer, job, rollout, video_facts, emit)
    if run:
        _stream(graph, inp, config, deps, rollout, emit)
    state = graph.get_state(config).values
    if state.get("final") is None:
        raise VidraError(
            f"rollout {rollout} of job {job.id} ended without a final answer; "
            "it was not recorded (run `vidra resume` to retry)"
        )
    episode_id = _record(
        store, _episode(job, rollout, state, time.perf_counter() - started, deps.worker)
    )
    checkpointer.delete_thread(thread_id(job.id, rollout))
    emit(
        {
            "type": "episode",
            "rollout": rollout,
            "episode_id": episode_id,
            "final": state["final"],
            "rewards": {r["name"]: r["value"] for r in state["rewards"]},
        }
    )
    return episode_id


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
        why = c.get("why") or "; ".join(c.get("rules") or [])
        return f"{c['decision']} (score {c['score']:.2f}: {why})" if why else c["decision"]
    if node == "finalize" and change.get("final"):
        return f"final {change['final'].get('answer')!r}"
    return node

"""Submitting questions as jobs and waiting for their answers, over a `Runtime`.

Every input is checked before any work (and before any row is written); a job's wait always
ends: with its answer, `JobFailed`/`JobCancelled`, the error that interrupted it (the
database down or the disk full: the job stays resumable), or `TimeoutError`. Used by the
`Client` facade and by the pipelines (evaluation, online retraining, the demo).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidra.errors import (
    DatabaseUnavailable,
    InvalidInput,
    JobCancelled,
    JobFailed,
    NotFound,
    VidraError,
)
from vidra.runtime import Runtime
from vidra.storage import JobCreate, VideoIn, VideoRecord
from vidra.storage.records import invalid_input

__all__ = [
    "Answer",
    "Budget",
    "answer_of",
    "clean_orphan_checkpoints",
    "register_video",
    "resume",
    "submit",
    "wait",
]


class Budget(BaseModel):
    """Per-job limits; unset fields take the configured defaults."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int | None = Field(None, gt=0)
    max_frames: int | None = Field(None, gt=0)
    frames_per_round: int | None = Field(None, gt=0)
    deadline_s: float | None = Field(None, gt=0)


@dataclass(frozen=True)
class Answer:
    """A job's answer: from its first rollout (the others are for training)."""

    text: str | None
    choice: int | None
    confidence: float | None
    evidence: list[float]
    episode_id: str
    job_id: str
    rewards: dict[str, float] = field(default_factory=dict)


def register_video(rt: Runtime, video: str | Path) -> str:
    """Probe ``video`` and record it; returns its id. Raises `VideoError` for bad files."""
    from vidra.video import content_hash, is_remote, probe

    info = probe(video)
    # a remote source is hashed through the URL as given (its credentials, if any, are not
    # stored: ``info.path`` is the URL without them)
    source = str(video) if is_remote(video) else info.path
    rec = rt.store.register_video(
        VideoIn(
            path=info.path,
            size=info.identity.size,
            mtime_ns=info.identity.mtime_ns,
            content_hash=content_hash(source),
            duration=info.duration,
            fps=info.fps,
            frame_count=info.frame_count,
            width=info.width,
            height=info.height,
            codec=info.codec,
        )
    )
    return rec.id


def _request(
    rt: Runtime,
    question: str,
    options: Sequence[str] | None,
    answer: str | None,
    rollouts: int,
    budget: Budget | dict[str, Any] | None,
    strategy: str | None,
    subtitles: str | Path | None = None,
    evidence: Sequence[tuple[float, float]] | None = None,
) -> JobCreate:
    from vidra.agents import STRATEGIES

    try:
        b = budget if isinstance(budget, Budget) else Budget.model_validate(budget or {})
    except ValidationError as exc:
        raise invalid_input(exc, "budget") from exc
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {strategy!r}; choose from {sorted(STRATEGIES)}")
    a = rt.settings.agents
    limits = {
        "max_rounds": b.max_rounds or a.max_rounds,
        "max_frames": b.max_frames or a.max_frames,
        "frames_per_round": b.frames_per_round or a.frames_per_round,
        "deadline_s": b.deadline_s or a.deadline_s,
        "strategy": strategy or a.strategy,
    }
    try:
        return JobCreate(
            video_id="pending",
            question=question,
            options=list(options) if options is not None else None,
            answer=answer,
            rollouts=rollouts,
            budget=limits,
            subtitles=_subtitles(subtitles),
            evidence=cast(Any, evidence),  # JobCreate checks (and lists) what it is given
        )
    except ValidationError as exc:
        raise invalid_input(exc, "job") from exc


def _subtitles(path: str | Path | None) -> str | None:
    """A subtitle file's absolute path, after checking it parses (a bad file fails here)."""
    if path is None:
        return None
    from vidra.video.subtitles import load_subtitles

    load_subtitles(path)
    return str(Path(path).expanduser().resolve())


def _evidence_within(video: VideoRecord, spans: Sequence[tuple[float, float]]) -> None:
    """Spans that start after the video ends would credit no tool call, silently."""
    late = [a for a, _ in spans if video.duration > 0 and a > video.duration]
    if late:
        raise InvalidInput(
            f"evidence span starting at {late[0]:g} s is past the end of {Path(video.path).name} "
            f"({video.duration:g} s): give spans within the video, in seconds"
        )


def submit(
    rt: Runtime,
    video: str | Path,
    question: str,
    options: Sequence[str] | None = None,
    answer: str | None = None,
    rollouts: int = 1,
    budget: Budget | dict[str, Any] | None = None,
    strategy: str | None = None,
    run: bool = True,
    subtitles: str | Path | None = None,
    evidence: Sequence[tuple[float, float]] | None = None,
    eval_question: tuple[str, str] | None = None,
) -> str:
    """Queue a question about ``video`` (see `vidra.Client.submit`); returns the job id.

    ``subtitles`` (SRT/VTT/JSON) are shown to the agents near the frames they look at;
    ``evidence`` are ground-truth spans that show the answer (rewards only). With
    ``run=False`` the job is only recorded (queued) for an executor to pick up.
    ``eval_question`` (evaluation run id, question id): the job is recorded linked to it."""
    request = _request(
        rt, question, options, answer, rollouts, budget, strategy, subtitles, evidence
    )
    video_id = register_video(rt, video)
    if request.evidence:  # the video's length is read only when there are spans to check
        _evidence_within(rt.store.get_video(video_id), request.evidence)
    m = rt.settings.model
    job = rt.store.create_job(
        request.model_copy(
            update={
                "video_id": video_id,
                "settings": rt.settings.agents.model_dump(),
                "model": {"backend": m.backend, "path": m.path},
            }
        ),
        eval_question,
    )
    if run:
        rt.executor.submit(job.id)
    return job.id


def answer_of(rt: Runtime, job_id: str) -> Answer:
    """The answer recorded for ``job_id`` (its first rollout)."""
    eps = rt.store.episodes_of_job(job_id)
    if not eps:
        raise NotFound(f"job {job_id} has no recorded episode yet")
    t = rt.store.get_episode(eps[0].id)
    last = next((s.parsed for s in reversed(t.steps) if s.role == "reasoner" and s.parsed), {})
    return Answer(
        text=t.episode.answer,
        choice=t.episode.choice,
        confidence=t.episode.confidence,
        evidence=list(last.get("evidence", [])) if isinstance(last, dict) else [],
        episode_id=t.episode.id,
        job_id=job_id,
        rewards={r.name: r.value for r in t.rewards if r.step_order is None},
    )


def _interrupted(rt: Runtime, job_id: str) -> BaseException | None:
    """What ended this process's run of the job without marking it, if anything did."""
    fut = rt.executor.future(job_id) if rt.has_executor() else None
    if fut is None or not fut.done() or fut.cancelled():
        return None
    exc = fut.exception()
    if exc is None:
        return None
    return exc if isinstance(exc, VidraError) else JobFailed(job_id, f"{type(exc).__name__}: {exc}")


def wait(rt: Runtime, job_id: str, timeout: float | None = None) -> Answer:
    """Wait for ``job_id`` and return its answer.

    Raises:
        TimeoutError: not finished within ``timeout`` seconds.
        JobFailed, JobCancelled: the job ended so (the message says why).
        DatabaseUnavailable, DiskFull: the job was interrupted and left resumable, or the
            database stayed unreachable for ``storage.reconnect_s`` while waiting.
    """
    until = None if timeout is None else time.monotonic() + timeout
    lost: float | None = None
    while True:
        stopped = _interrupted(rt, job_id)
        if stopped is not None:
            raise stopped
        try:
            job = rt.store.get_job(job_id)
            lost = None
        except DatabaseUnavailable:
            lost = lost or time.monotonic()
            if time.monotonic() - lost > rt.settings.storage.reconnect_s:
                raise
            time.sleep(0.5)
            continue
        if job.status == "done":
            return answer_of(rt, job_id)
        if job.status == "failed":
            raise JobFailed(job_id, job.error or "unknown cause")
        if job.status == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled ({job.error or 'by the user'})")
        if until is not None and time.monotonic() > until:
            raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
        fut = rt.executor.future(job_id) if rt.has_executor() else None
        if fut is not None and not fut.done():
            with contextlib.suppress(Exception):
                fut.result(timeout=0.2)
        else:
            time.sleep(0.2)


def resume(rt: Runtime) -> list[str]:
    """Re-enqueue the jobs this process may take (queued, or running with an expired lease)
    and delete checkpoints a crash left behind; returns the job ids taken."""
    owner = rt.executor.owner
    jobs = rt.store.resumable_jobs(rt.settings.runner.lease_s, owner=owner)
    clean_orphan_checkpoints(rt)
    for j in jobs:
        rt.executor.submit(j.id)
    return [j.id for j in jobs]


def clean_orphan_checkpoints(rt: Runtime) -> int:
    """Delete checkpoints of rollouts already recorded (a crash between the episode's commit
    and the checkpoint's deletion) and of finished or unknown jobs; returns how many."""
    from vidra.graph.checkpoint import checkpoint_threads

    saver = rt.checkpointer
    removed = 0
    for tid in checkpoint_threads(saver):
        job_id, _, rollout = tid.rpartition(":")
        try:
            job = rt.store.get_job(job_id)
        except NotFound:
            job = None
        recorded = {e.rollout_index for e in rt.store.episodes_of_job(job_id)} if job else set()
        finished = job is None or job.status in ("done", "failed", "cancelled")
        if finished or (rollout.isdigit() and int(rollout) in recorded):
            saver.delete_thread(tid)
            removed += 1
    return removed

"""The public Python API: `Client` submits video questions and returns `Job`s; the one place
that turns `Settings` into concrete backends (store, reader, model, checkpointer, runner).

    client = vidra.Client()
    job = client.submit("video.mp4", "Which came first?", options=["red circle", "blue square"])
    print(job.result(timeout=600))
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidra.config import Settings
from vidra.errors import InvalidInput, NotFound, VidraError
from vidra.models.protocol import ChatModel, SamplingParams
from vidra.storage import JobCreate, JobRecord, Trajectory, TrajectoryStore, VideoIn
from vidra.storage.records import invalid_input

__all__ = ["Answer", "Budget", "Client", "Job"]


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


class Job:
    """A submitted question. Thread-safe handle; the record lives in SQL."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.status()!r})"

    def record(self) -> JobRecord:
        return self.client.store.get_job(self.id)

    def status(self) -> str:
        return self.record().status

    def result(self, timeout: float | None = None) -> Answer:
        """Wait for the job and return its answer.

        Raises:
            TimeoutError: not finished within ``timeout`` seconds.
            VidraError: the job failed or was cancelled (the message says which and why).
        """
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.record()
            if job.status == "done":
                return self.client.answer(job.id)
            if job.status in ("failed", "cancelled"):
                raise VidraError(f"job {job.id} {job.status}: {job.error}")
            if until is not None and time.monotonic() > until:
                raise TimeoutError(f"job {job.id} is still {job.status} after {timeout} s")
            fut = self.client.runner.futures.get(self.id) if self.client._runner else None
            if fut is not None:
                with contextlib.suppress(Exception):
                    fut.result(timeout=0.2)
            else:
                time.sleep(0.2)

    def cancel(self) -> None:
        """Stop the job at its next agent step; status becomes ``cancelled``."""
        job = self.record()
        if job.status == "queued" and self.id not in self.client.runner.futures:
            self.client.store.set_job_status(self.id, "cancelled", error="cancelled by the user")
            return
        self.client.runner.cancel(self.id)

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Progress events (one per agent step, one per finished episode) until the job ends."""
        q = self.client.runner.events(self.id)
        while True:
            try:
                event = q.get(timeout=timeout)
            except queue.Empty:
                return
            if event.get("type") == "job_done":
                return
            yield event

    def episodes(self) -> list[Trajectory]:
        return [
            self.client.store.get_episode(e.id) for e in self.client.store.episodes_of_job(self.id)
        ]


class Client:
    """Submit video questions; jobs persist in SQL and resume after a crash.

    Args:
        settings: configuration (default: from ``VIDRA_*`` environment variables).
        model: a ready `ChatModel` (default: loaded from ``settings.model`` on first use;
            with ``executor="ray"`` it is shipped to the model actor).
        resume: re-enqueue queued and running jobs found in the store at start.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: ChatModel | None = None,
        resume: bool = False,
    ) -> None:
        from vidra.video import open_reader

        self.settings = settings or Settings()
        self.store = TrajectoryStore(settings=self.settings)
        self.reader = open_reader(self.settings)
        self._model = model
        self._model_lock = threading.Lock()
        self._runner: Any = None
        self._checkpointer_cm: Any = None
        if resume:
            self.resume()

    # backends -------------------------------------------------------------------------------

    @property
    def model(self) -> ChatModel:
        with self._model_lock:
            if self._model is None:
                from vidra.models import load_chat_model

                self._model = load_chat_model(self.settings, adapters=self._adapters())
            return self._model

    def _adapters(self) -> dict[str, str]:
        """Configured adapters, else each role's MLflow champion (when there is one)."""
        if self.settings.model.adapters or not self.settings.mlflow.use_champions:
            return dict(self.settings.model.adapters)
        uri = self.settings.resolved_tracking_uri()
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            return {}  # nothing was ever trained here
        from vidra.rl.cycle import ROLES
        from vidra.rl.tracking import champion_adapters

        try:
            return champion_adapters(self.settings, list(ROLES))
        except VidraError as exc:  # an unreachable tracking server must not stop answering
            import logging

            logging.getLogger(__name__).warning("no champion adapters: %s", exc)
            return {}

    def retrain(
        self,
        algo: str = "grpo",
        roles: Sequence[str] | None = None,
        since_run: str | None = "last",
        num_workers: int | None = None,
        min_reward: float = 1.0,
    ) -> Any:
        """Run a retraining cycle on this client's store; returns a `RetrainResult`.

        New jobs of a new `Client` pick up the roles' champion adapters when promoted.
        """
        from vidra.rl.cycle import retrain

        return retrain(
            self.settings, algo, roles, since_run, num_workers=num_workers, min_reward=min_reward
        )

    @property
    def runner(self) -> Any:
        if self._runner is None and self.settings.runner.executor == "ray":
            from vidra.graph.ray_runner import RayJobRunner

            self._runner = RayJobRunner(self.store, self.settings, self._model)
        if self._runner is None:
            from vidra.graph.checkpoint import open_checkpointer
            from vidra.graph.runner import JobRunner

            self._checkpointer_cm = open_checkpointer(self.settings)
            saver = self._checkpointer_cm.__enter__()
            self._runner = JobRunner(
                self.store, self._deps, self._facts, saver, workers=self.settings.runner.workers
            )
        return self._runner

    def _deps(self, job: JobRecord, rollout: int) -> Any:
        from vidra.graph.deps import Deps
        from vidra.graph.runner import rollout_seed

        a = self.settings.agents
        if job.rollouts > 1:
            sampling = SamplingParams(
                temperature=a.rollout_temperature,
                max_tokens=a.max_tokens,
                seed=rollout_seed(job.id, rollout) % 2**31,
            )
        else:
            sampling = SamplingParams(temperature=0.0, max_tokens=a.max_tokens)
        return Deps(
            model=self.model,
            reader=self.reader,
            strategy=job.budget.get("strategy", a.strategy),
            sampling=sampling,
            reasoner_samples=a.reasoner_samples,
            answer_options=a.answer_mode == "options",
            reflect=a.reflect,
            critic_threshold=a.critic_threshold,
            frame_size=a.frame_size,
            storyboard_size=a.storyboard_size,
            plan_budget=a.plan_budget,
        )

    def _facts(self, job: JobRecord) -> dict[str, Any]:
        v = self.store.get_video(job.video_id)
        return {
            "video_id": v.id,
            "video_path": v.path,
            "duration": v.duration,
            "fps": v.fps,
            "frame_count": v.frame_count,
        }

    # jobs -----------------------------------------------------------------------------------

    def register_video(self, video: str | Path) -> str:
        """Probe ``video`` and record it; returns its id. Raises `VideoError` for bad files."""
        from vidra.video import content_hash, probe

        info = probe(video)
        rec = self.store.register_video(
            VideoIn(
                path=info.path,
                size=info.identity.size,
                mtime_ns=info.identity.mtime_ns,
                content_hash=content_hash(info.path),
                duration=info.duration,
                fps=info.fps,
                frame_count=info.frame_count,
                width=info.width,
                height=info.height,
                codec=info.codec,
            )
        )
        return rec.id

    def submit(
        self,
        video: str | Path,
        question: str,
        options: Sequence[str] | None = None,
        answer: str | None = None,
        rollouts: int = 1,
        budget: Budget | dict[str, Any] | None = None,
        strategy: str | None = None,
    ) -> Job:
        """Queue a question about ``video``; every input is checked before any work starts.

        Args:
            video: a video file.
            question: the question (non-empty).
            options: multiple-choice options (>= 2, distinct), or None for free form.
            answer: the ground truth, if known (must be among the options); enables rewards.
            rollouts: G sampled episodes (G > 1 forms a GRPO group).
            budget: per-job limits (positive); defaults from settings.
            strategy: frame selector strategy (default from settings).
        """
        from vidra.agents import STRATEGIES

        try:
            b = budget if isinstance(budget, Budget) else Budget.model_validate(budget or {})
        except ValidationError as exc:
            raise invalid_input(exc, "budget") from exc
        if strategy is not None and strategy not in STRATEGIES:
            raise InvalidInput(f"unknown strategy {strategy!r}; choose from {sorted(STRATEGIES)}")
        a = self.settings.agents
        limits = {
            "max_rounds": b.max_rounds or a.max_rounds,
            "max_frames": b.max_frames or a.max_frames,
            "frames_per_round": b.frames_per_round or a.frames_per_round,
            "deadline_s": b.deadline_s or a.deadline_s,
            "strategy": strategy or a.strategy,
        }
        try:
            request = JobCreate(
                video_id="pending",
                question=question,
                options=list(options) if options is not None else None,
                answer=answer,
                rollouts=rollouts,
                budget=limits,
            )
        except ValidationError as exc:
            raise invalid_input(exc, "job") from exc
        video_id = self.register_video(video)
        model = {"backend": self.settings.model.backend, "path": self.settings.model.path}
        job = self.store.create_job(
            request.model_copy(
                update={
                    "video_id": video_id,
                    "settings": self.settings.agents.model_dump(),
                    "model": model,
                }
            )
        )
        self.runner.submit(job.id)
        return Job(self, job.id)

    def submit_many(self, items: Iterable[dict[str, Any]]) -> list[Job]:
        """Submit several questions (each a dict of `submit`'s arguments), all checked first."""
        return [self.submit(**item) for item in list(items)]

    def job(self, job_id: str) -> Job:
        self.store.get_job(job_id)
        return Job(self, job_id)

    def jobs(self, status: str | Sequence[str] | None = None, limit: int = 100) -> list[JobRecord]:
        return self.store.jobs(status=status, limit=limit)

    def episode(self, episode_id: str) -> Trajectory:
        """An episode's trajectory: steps (with tokens and logprobs) and reward components."""
        return self.store.get_episode(episode_id)

    def answer(self, job_id: str) -> Answer:
        eps = self.store.episodes_of_job(job_id)
        if not eps:
            raise NotFound(f"job {job_id} has no recorded episode yet")
        t = self.store.get_episode(eps[0].id)
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

    def resume(self) -> list[Job]:
        """Re-enqueue every queued or running job (after a crash): each continues from its
        last checkpoint, skipping rollouts already recorded."""
        jobs = self.store.jobs(status=["queued", "running"], limit=10_000)
        for j in sorted(jobs, key=lambda j: j.created_at):
            self.runner.submit(j.id)
        return [Job(self, j.id) for j in jobs]

    def close(self, wait: bool = True) -> None:
        if self._runner is not None:
            self._runner.shutdown(wait=wait)
            if self._checkpointer_cm is not None:
                self._checkpointer_cm.__exit__(None, None, None)
            self._runner = None
        self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

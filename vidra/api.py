"""The public Python API: `Client` submits video questions and returns `Job`s.

A thin facade: the components come from the composition root (`vidra.runtime.Runtime`),
jobs are submitted and awaited by `vidra.jobs`, retraining runs as a pipeline.

    client = vidra.Client()
    job = client.submit("video.mp4", "Which came first?", options=["red circle", "blue square"])
    print(job.result(timeout=600))
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vidra import jobs
from vidra.config import Settings, load_settings
from vidra.jobs import Answer, Budget
from vidra.models.protocol import ChatModel
from vidra.runtime import Runtime, check_settings
from vidra.storage import JobRecord, Trajectory, TrajectoryStore
from vidra.video.decoders import FrameSource

__all__ = ["Answer", "Budget", "Client", "Job"]


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
            JobFailed, JobCancelled: the job ended so; the message says why.
            DatabaseUnavailable, DiskFull: the job was interrupted and stays resumable.
        """
        return jobs.wait(self.client.runtime, self.id, timeout)

    def cancel(self) -> None:
        """Stop the job at its next agent step; status becomes ``cancelled``."""
        rt = self.client.runtime
        job = self.record()
        if job.status == "queued" and (
            not rt.has_executor() or rt.executor.future(self.id) is None
        ):
            rt.store.set_job_status(self.id, "cancelled", error="cancelled by the user")
            return
        rt.executor.cancel(self.id)

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Progress events (one per agent step, one per finished episode) until the job ends."""
        q = self.client.runtime.executor.events(self.id)
        while True:
            try:
                event = q.get(timeout=timeout)
            except queue.Empty:
                return
            if event.get("type") == "job_done":
                return
            yield event

    def episodes(self) -> list[Trajectory]:
        store = self.client.store
        return [store.get_episode(e.id) for e in store.episodes_of_job(self.id)]


class Client:
    """Submit video questions; jobs persist in SQL and resume after a crash.

    Args:
        settings: configuration (default: from ``VIDRA_*`` environment variables).
        model: a ready `ChatModel` (default: loaded from ``settings.model`` on first use;
            with ``executor="ray"`` it is shipped to the model actor).
        resume: re-enqueue queued jobs, and running ones whose lease expired, at start.

    Settings that can be checked without loading a model (adapter directories, roles, the
    model path, devices, the tracking URI) are checked here, before any job row exists.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: ChatModel | None = None,
        resume: bool = False,
    ) -> None:
        self.settings = settings or load_settings()
        check_settings(self.settings, model_path=model is None)
        self.runtime = Runtime(self.settings, model=model)
        if resume:
            self.resume()

    @property
    def store(self) -> TrajectoryStore:
        return self.runtime.store

    @property
    def reader(self) -> FrameSource:
        return self.runtime.reader

    @property
    def model(self) -> ChatModel:
        return self.runtime.model

    @property
    def runner(self) -> Any:
        """The executor (kept under its old name)."""
        return self.runtime.executor

    # jobs -----------------------------------------------------------------------------------

    def register_video(self, video: str | Path) -> str:
        """Probe ``video`` and record it; returns its id. Raises `VideoError` for bad files."""
        return jobs.register_video(self.runtime, video)

    def submit(
        self,
        video: str | Path,
        question: str,
        options: Sequence[str] | None = None,
        answer: str | None = None,
        rollouts: int = 1,
        budget: Budget | dict[str, Any] | None = None,
        strategy: str | None = None,
        subtitles: str | Path | None = None,
        evidence: Sequence[tuple[float, float]] | None = None,
    ) -> Job:
        """Queue a question about ``video``; every input is checked before any work starts.

        Args:
            video: a video file.
            question: the question (non-empty).
            options: multiple-choice options (2 to 26, distinct), or None for open-ended.
            answer: the ground truth, if known (must be among the options); enables rewards.
            rollouts: G sampled episodes (G > 1 forms a GRPO group).
            budget: per-job limits (positive); defaults from settings.
            strategy: frame selector strategy (default from settings).
            subtitles: an SRT/VTT/JSON subtitle file; the lines near the frames the agents
                look at are put in their prompts.
            evidence: ground-truth ``(start, end)`` spans in seconds that show the answer, if
                known (at most 64). Rewards only: each search/zoom/inspect step that surfaces
                one is credited (``evidence_credit``), which retraining uses as per-step
                credit; the agents never see them.
        """
        job_id = jobs.submit(
            self.runtime, video, question, options, answer, rollouts, budget, strategy,
            subtitles=subtitles, evidence=evidence,
        )  # fmt: skip
        return Job(self, job_id)

    def submit_many(self, items: Iterable[dict[str, Any]]) -> list[Job]:
        """Submit several questions (each a dict of `submit`'s arguments)."""
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
        return jobs.answer_of(self.runtime, job_id)

    def resume(self) -> list[Job]:
        """Re-enqueue queued jobs and running ones whose lease expired (after a crash or a
        database outage): each continues from its last checkpoint, skipping rollouts
        already recorded. Checkpoints a crash left behind are deleted."""
        return [Job(self, j) for j in jobs.resume(self.runtime)]

    # learning -------------------------------------------------------------------------------

    def retrain(
        self,
        algo: str = "grpo",
        roles: Sequence[str] | None = None,
        since_run: str | None = "last",
        num_workers: int | None = None,
        min_reward: float | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        """Run a retraining cycle on this client's store; returns a `RetrainResult`.

        Args:
            algo: ``grpo``, ``dpo`` or ``sft``.
            roles: roles to train (default: all).
            since_run: learn from episodes after the last successful training run
                (``"last"``), from everything (``"all"`` or None), or after a run id.
            num_workers: Ray Train workers (default: settings).
            min_reward: SFT's rejection-sampling threshold (default: ``train.sft_min_reward``).
            on_step: called with each training step's progress (role, step, loss, ...).

        New jobs of a new `Client` pick up the roles' champion adapters when promoted.
        """
        from vidra.pipelines.retrain import retrain

        return retrain(self.settings, algo, roles, since_run, num_workers=num_workers,
                       min_reward=min_reward, on_step=on_step)  # fmt: skip

    def evaluate(self, task: str, **spec: Any) -> dict[str, Any]:
        """Evaluate on a benchmark task (see `vidra.pipelines.evaluate.EvalSpec` for the
        fields, e.g. ``annotations=``, ``videos=``, ``limit=``, ``strategy=``); the report
        (accuracy with its 95% interval, per category, costs, ``run_id``)."""
        from vidra.pipelines.evaluate import EvalSpec, evaluate

        paths = ("annotations", "videos", "answers", "subtitles", "out")
        fields: dict[str, Any] = {
            k: Path(v) if k in paths and v is not None else v for k, v in spec.items()
        }
        return evaluate(self.settings, EvalSpec(task, **fields))

    def close(self, wait: bool = True) -> None:
        self.runtime.close(wait=wait)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

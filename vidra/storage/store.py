"""`TrajectoryStore`: the SQL record of videos, jobs, episodes, steps, rewards, model versions
and training runs. Pydantic records in and out; every episode is written in one transaction.

Training reads stream in bounded batches (see `vidra.storage.queries`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from vidra.config import Settings
from vidra.errors import IllegalTransition, NotFound, StorageError
from vidra.storage import queries
from vidra.storage.codec import encode_ids, encode_logprobs, truncate
from vidra.storage.engine import WRITE, make_engine, with_retry
from vidra.storage.migrate import check_revision, head_revision, upgrade
from vidra.storage.orm import (
    EpisodeRow,
    JobRow,
    ModelVersionRow,
    RewardRow,
    StepRow,
    TrainingRunEpisodeRow,
    TrainingRunRow,
    VideoRow,
    utcnow,
)
from vidra.storage.records import (
    EpisodeIn,
    EpisodeRecord,
    Group,
    JobCreate,
    JobRecord,
    JobStatus,
    ModelVersionRecord,
    RewardIn,
    TrainingRunRecord,
    Trajectory,
    VideoIn,
    VideoRecord,
    invalid_input,
)

__all__ = ["TrajectoryStore"]

log = logging.getLogger(__name__)
R = TypeVar("R", bound=BaseModel)

TRANSITIONS: dict[str, set[str]] = {
    "queued": {"running", "cancelled"},
    "running": {"done", "failed", "cancelled", "queued"},  # queued again: resumed after a crash
    "done": set(),
    "failed": set(),
    "cancelled": set(),
}


_last_ns = 0
_id_lock = threading.Lock()


def _new_id() -> str:
    """32 hex digits that sort by creation time (like UUIDv7): nanoseconds + 64 random bits."""
    global _last_ns
    with _id_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        now = _last_ns
    return f"{now:016x}{secrets.token_hex(8)}"


def _validate(cls: type[R], value: R | dict[str, Any], what: str) -> R:
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        raise invalid_input(exc, what) from exc


def question_key(content_hash: str, question: str, options: Sequence[str] | None) -> str:
    """Episodes with the same key answer the same question about the same video content."""
    raw = json.dumps([content_hash, question.strip(), list(options or [])])
    return hashlib.sha1(raw.encode()).hexdigest()


class TrajectoryStore:
    """The trajectory store on SQLite (default) or PostgreSQL.

    Args:
        url: SQLAlchemy URL; default from ``settings`` (SQLite file under the data dir).
        settings: vidra settings (default: from the environment).
        auto_migrate: create/upgrade the schema on open (default from settings).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.url = url or self.settings.resolved_database_url()
        self.engine: Engine = make_engine(self.url, self.settings.storage.pool_size)
        self.max_text_chars = self.settings.storage.max_text_chars
        migrate = self.settings.storage.auto_migrate if auto_migrate is None else auto_migrate
        rev = check_revision(self.engine)
        if rev != head_revision():
            if not migrate:
                raise StorageError(
                    f"database schema is at {rev!r}, vidra needs {head_revision()!r}; "
                    "run `vidra db upgrade`"
                )
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> TrajectoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, fn: Any) -> Any:
        def run() -> Any:
            with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
                return fn(conn)

        return with_retry(run)

    # videos ---------------------------------------------------------------------------------

    def register_video(self, video: VideoIn | dict[str, Any]) -> VideoRecord:
        """Record a video (idempotent for the same path, size and mtime)."""
        v = _validate(VideoIn, video, "video")

        def run(conn: Connection) -> VideoRecord:
            row = conn.execute(
                select(VideoRow).where(
                    VideoRow.path == v.path,
                    VideoRow.size == v.size,
                    VideoRow.mtime_ns == v.mtime_ns,
                )
            ).first()
            if row is None:
                values = {"id": _new_id(), "created_at": utcnow(), **v.model_dump()}
                conn.execute(insert(VideoRow).values(**values))
                return VideoRecord.model_construct(**values)
            return VideoRecord.model_validate(row._mapping)

        return self._write(run)

    def get_video(self, video_id: str) -> VideoRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(VideoRow).where(VideoRow.id == video_id)).first()
        if row is None:
            raise NotFound(f"video {video_id!r} is not in the store; register it first")
        return VideoRecord.model_validate(row._mapping)

    # jobs -----------------------------------------------------------------------------------

    def create_job(self, job: JobCreate | dict[str, Any]) -> JobRecord:
        """Create a queued job for a registered video."""
        j = _validate(JobCreate, job, "job")
        video = self.get_video(j.video_id)
        values = {
            "id": _new_id(),
            **j.model_dump(),
            "question_key": question_key(video.content_hash, j.question, j.options),
            "status": "queued",
            "error": None,
            "created_at": utcnow(),
            "started_at": None,
            "finished_at": None,
        }
        self._write(lambda conn: conn.execute(insert(JobRow).values(**values)))
        return JobRecord.model_validate(values)

    def get_job(self, job_id: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(JobRow).where(JobRow.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist")
        return JobRecord.model_validate(row._mapping)

    def jobs(
        self, status: JobStatus | Sequence[str] | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Most recent jobs first, optionally only those in ``status``."""
        stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            stmt = stmt.where(JobRow.status.in_(wanted))
        with self.engine.connect() as conn:
            return [JobRecord.model_validate(r._mapping) for r in conn.execute(stmt)]

    def set_job_status(self, job_id: str, status: JobStatus, error: str | None = None) -> JobRecord:
        """Move a job along queued -> running -> done | failed | cancelled (atomically).

        Raises:
            NotFound: unknown job. IllegalTransition: a move the state machine forbids.
        """
        if status not in TRANSITIONS:
            raise IllegalTransition(
                f"unknown job status {status!r}; use one of {list(TRANSITIONS)}"
            )
        allowed_from = [s for s, to in TRANSITIONS.items() if status in to]
        now = utcnow()
        values: dict[str, Any] = {"status": status, "error": error}
        if status == "running":
            values["started_at"] = now
        if status in ("done", "failed", "cancelled"):
            values["finished_at"] = now

        def run(conn: Connection) -> int:
            res = conn.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(allowed_from))
                .values(**values)
            )
            return int(res.rowcount)

        if self._write(run) == 0:
            current = self.get_job(job_id).status  # raises NotFound for unknown ids
            raise IllegalTransition(
                f"job {job_id} cannot go from {current!r} to {status!r}; "
                f"allowed from {current!r}: {sorted(TRANSITIONS[current]) or 'nothing (final)'}"
            )
        return self.get_job(job_id)

    # episodes -------------------------------------------------------------------------------

    def record_episode(self, episode: EpisodeIn | dict[str, Any]) -> str:
        """Record one episode with its steps and rewards in one transaction; returns its id."""
        return self.record_episodes([episode])[0]

    def record_episodes(self, episodes: Sequence[EpisodeIn | dict[str, Any]]) -> list[str]:
        """Record several episodes in one transaction (all or nothing); returns their ids."""
        eps = [_validate(EpisodeIn, e, f"episode[{k}]") for k, e in enumerate(episodes)]
        ids = [_new_id() for _ in eps]
        now = utcnow()

        def run(conn: Connection) -> list[str]:
            job_ids = sorted({e.job_id for e in eps})
            keys = dict(
                conn.execute(
                    select(JobRow.id, JobRow.question_key).where(JobRow.id.in_(job_ids))
                ).all()
            )
            missing = [j for j in job_ids if j not in keys]
            if missing:
                raise NotFound(f"job(s) {missing} do not exist; create the job before its episodes")
            conn.execute(
                insert(EpisodeRow),
                [
                    self._episode_row(i, e, keys[e.job_id], now)
                    for i, e in zip(ids, eps, strict=True)
                ],
            )
            steps = [self._step_row(i, s) for i, e in zip(ids, eps, strict=True) for s in e.steps]
            if steps:
                conn.execute(insert(StepRow), steps)
            rewards = [
                _reward_row(i, r, now) for i, e in zip(ids, eps, strict=True) for r in e.rewards
            ]
            if rewards:
                conn.execute(insert(RewardRow), rewards)
            return ids

        try:
            return self._write(run)
        except IntegrityError as exc:
            text = str(exc.orig)
            if "uq_episode_rollout" in text or "episode.job_id, episode.rollout_index" in text:
                raise StorageError(
                    "episode not recorded: this (job, rollout_index) is already recorded; "
                    "each rollout of a job is recorded once"
                ) from exc
            raise StorageError(f"episode not recorded: the database refused it ({text})") from exc

    @staticmethod
    def _episode_row(eid: str, e: EpisodeIn, key: str, now: datetime) -> dict[str, Any]:
        data = e.model_dump(exclude={"steps", "rewards"})
        data["group_id"] = e.group_id or e.job_id
        return {**data, "id": eid, "question_key": key, "n_steps": len(e.steps), "created_at": now}

    def _step_row(self, eid: str, s: Any) -> dict[str, Any]:
        prompt, cut_p = truncate(s.prompt, self.max_text_chars)
        completion, cut_c = truncate(s.completion, self.max_text_chars)
        return {
            "episode_id": eid,
            "step_order": s.order,
            "role": s.role,
            "adapter_version": s.adapter_version,
            "prompt": prompt,
            "frames": [list(f) for f in s.frames],
            "completion": completion,
            "messages": s.messages,
            "token_ids": encode_ids(s.token_ids),
            "logprobs": encode_logprobs(s.logprobs),
            "parsed": s.parsed,
            "parse_ok": s.parse_ok,
            "truncated": cut_p or cut_c,
            "latency_s": s.latency_s,
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
        }

    def add_rewards(
        self, episode_id: str, rewards: Sequence[RewardIn | dict[str, Any]], replace: bool = False
    ) -> None:
        """Add reward components to a recorded episode (e.g. ground truth arriving later).

        Raises:
            NotFound: unknown episode, or a step order the episode does not have.
            StorageError: a component already recorded, unless ``replace``.
        """
        items = [_validate(RewardIn, r, f"reward[{k}]") for k, r in enumerate(rewards)]
        now = utcnow()

        def run(conn: Connection) -> None:
            n_steps = conn.execute(
                select(EpisodeRow.n_steps).where(EpisodeRow.id == episode_id)
            ).scalar()
            if n_steps is None:
                raise NotFound(f"episode {episode_id!r} does not exist")
            orders = set(
                conn.execute(
                    select(StepRow.step_order).where(StepRow.episode_id == episode_id)
                ).scalars()
            )
            existing = set(
                conn.execute(
                    select(RewardRow.name, RewardRow.step_order).where(
                        RewardRow.episode_id == episode_id
                    )
                ).tuples()
            )
            for r in items:
                if r.step_order is not None and r.step_order not in orders:
                    raise NotFound(f"episode {episode_id} has no step {r.step_order}")
                if (r.name, r.step_order) in existing:
                    if not replace:
                        raise StorageError(
                            f"reward {r.name!r} (step {r.step_order}) is already recorded for "
                            f"episode {episode_id}; pass replace=True to overwrite it"
                        )
                    conn.execute(
                        delete(RewardRow).where(
                            RewardRow.episode_id == episode_id,
                            RewardRow.name == r.name,
                            RewardRow.step_order.is_(None)
                            if r.step_order is None
                            else RewardRow.step_order == r.step_order,
                        )
                    )
            if items:
                conn.execute(insert(RewardRow), [_reward_row(episode_id, r, now) for r in items])

        self._write(run)

    def get_episode(self, episode_id: str) -> Trajectory:
        """An episode with its steps and rewards. Raises `NotFound` for unknown ids."""
        with self.engine.connect() as conn:
            found = queries.trajectories(conn, [episode_id])
        if not found:
            raise NotFound(f"episode {episode_id!r} does not exist")
        return found[0]

    def episodes_of_job(self, job_id: str) -> list[EpisodeRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(EpisodeRow)
                .where(EpisodeRow.job_id == job_id)
                .order_by(EpisodeRow.rollout_index)
            )
            return [queries.episode_record(r) for r in rows]

    # training queries -----------------------------------------------------------------------

    def iter_trajectories(self, batch_size: int = 500, **filters: Any) -> Iterator[Trajectory]:
        """Stream trajectories oldest first in batches; see `queries.EpisodeFilter` for filters."""
        f = queries.EpisodeFilter(**filters)
        with self.engine.connect() as conn:
            yield from queries.iter_trajectories(conn, f, batch_size)

    def iter_groups(
        self, min_rollouts: int = 2, batch_size: int = 100, **filters: Any
    ) -> Iterator[Group]:
        """Stream groups of >= ``min_rollouts`` episodes of one question, in batches."""
        f = queries.EpisodeFilter(**filters)
        with self.engine.connect() as conn:
            yield from queries.iter_groups(conn, f, min_rollouts, batch_size)

    # model versions and training runs -------------------------------------------------------

    def record_model_version(
        self,
        role: str,
        registry_name: str,
        version: str,
        mlflow_run_id: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> ModelVersionRecord:
        values = {
            "id": _new_id(),
            "role": role,
            "registry_name": registry_name,
            "version": str(version),
            "mlflow_run_id": mlflow_run_id,
            "alias": None,
            "metrics": metrics or {},
            "created_at": utcnow(),
        }
        self._write(lambda conn: conn.execute(insert(ModelVersionRow).values(**values)))
        return ModelVersionRecord.model_validate(values)

    def set_alias(self, registry_name: str, version: str, alias: str) -> None:
        """Point ``alias`` at one version of a registered model (moving it off the others)."""

        def run(conn: Connection) -> None:
            conn.execute(
                update(ModelVersionRow)
                .where(
                    ModelVersionRow.registry_name == registry_name, ModelVersionRow.alias == alias
                )
                .values(alias=None)
            )
            res = conn.execute(
                update(ModelVersionRow)
                .where(
                    ModelVersionRow.registry_name == registry_name,
                    ModelVersionRow.version == str(version),
                )
                .values(alias=alias)
            )
            if res.rowcount == 0:
                raise NotFound(f"model version {registry_name} v{version} is not recorded")

        self._write(run)

    def model_versions(self, role: str | None = None) -> list[ModelVersionRecord]:
        stmt = select(ModelVersionRow).order_by(ModelVersionRow.created_at)
        if role is not None:
            stmt = stmt.where(ModelVersionRow.role == role)
        with self.engine.connect() as conn:
            return [ModelVersionRecord.model_validate(r._mapping) for r in conn.execute(stmt)]

    def create_training_run(
        self, algorithm: str, config: dict[str, Any], episode_ids: Sequence[str]
    ) -> TrainingRunRecord:
        """Record a training run and its lineage (the episodes it learns from)."""
        rid = _new_id()
        values = {
            "id": rid,
            "algorithm": algorithm,
            "config": config,
            "mlflow_run_id": None,
            "status": "running",
            "metrics": {},
            "created_at": utcnow(),
            "finished_at": None,
        }

        def run(conn: Connection) -> None:
            conn.execute(insert(TrainingRunRow).values(**values))
            if episode_ids:
                conn.execute(
                    insert(TrainingRunEpisodeRow),
                    [{"training_run_id": rid, "episode_id": e} for e in episode_ids],
                )

        try:
            self._write(run)
        except IntegrityError as exc:
            raise NotFound(f"training run lineage names an unknown episode ({exc.orig})") from exc
        return TrainingRunRecord.model_validate({**values, "n_episodes": len(set(episode_ids))})

    def finish_training_run(
        self,
        run_id: str,
        status: str,
        metrics: dict[str, Any] | None = None,
        mlflow_run_id: str | None = None,
    ) -> TrainingRunRecord:
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "metrics": metrics or {},
        }
        if mlflow_run_id is not None:
            values["mlflow_run_id"] = mlflow_run_id

        def run(conn: Connection) -> int:
            return int(
                conn.execute(
                    update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(**values)
                ).rowcount
            )

        if self._write(run) == 0:
            raise NotFound(f"training run {run_id!r} does not exist")
        return self.get_training_run(run_id)

    def get_training_run(self, run_id: str) -> TrainingRunRecord:
        with self.engine.connect() as conn:
            return queries.training_run(conn, run_id)

    def training_runs(self) -> list[TrainingRunRecord]:
        with self.engine.connect() as conn:
            return queries.training_runs(conn)


def _reward_row(eid: str, r: RewardIn, now: datetime) -> dict[str, Any]:
    return {
        "episode_id": eid,
        "step_order": r.step_order,
        "name": r.name,
        "value": r.value,
        "source": r.source,
        "created_at": now,
    }

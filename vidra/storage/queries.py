"""Read paths of the store: filters, keyset-paginated streaming, row -> record assembly.

Streams hold at most one batch of episodes (with their steps and rewards) in memory;
pagination is by ``(created_at, id)`` for episodes and by ``question_key`` for groups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from vidra.errors import InvalidInput, NotFound
from vidra.storage.codec import decode_ids, decode_logprobs
from vidra.storage.engine import DamagedText
from vidra.storage.orm import (
    EpisodeRow,
    EvalQuestionRow,
    RewardRow,
    StepRow,
    TrainingRunEpisodeRow,
    TrainingRunRow,
)
from vidra.storage.records import (
    EpisodeRecord,
    Group,
    RewardRecord,
    StepRecord,
    TrainingRunRecord,
    Trajectory,
)

__all__ = ["EpisodeFilter", "iter_groups", "iter_trajectories", "trajectories"]


def utc(dt: datetime) -> datetime:
    """Aware UTC datetimes out of any backend (SQLite hands back naive UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def utc_or_none(dt: datetime | None) -> datetime | None:
    return None if dt is None else utc(dt)


@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes a training query reads.

    Attributes:
        since: only episodes recorded after this time (naive times are UTC).
        since_run: only episodes recorded after this training run was created.
        role: only episodes with steps of this role; only those steps are returned.
        reward: only episodes with this episode-level reward component ...
        min_reward, max_reward: ... with a value in this range.
        adapter_version: only episodes with a step sampled from this adapter version.
        job_ids: only episodes of these jobs.
        evaluations: False leaves out the episodes that answered an evaluation run's questions
            (their jobs are in ``eval_question``), so that training never learns from the
            questions it is measured on.
    """

    since: datetime | None = None
    since_run: str | None = None
    role: str | None = None
    reward: str | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    adapter_version: str | None = None
    job_ids: Sequence[str] | None = None
    evaluations: bool = True

    def clauses(self, conn: Connection) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(EpisodeRow.created_at > _bind_time(conn, self.since))
        if self.since_run is not None:
            run = conn.execute(
                select(TrainingRunRow.created_at).where(TrainingRunRow.id == self.since_run)
            ).scalar()
            if run is None:
                raise NotFound(f"training run {self.since_run!r} does not exist")
            out.append(EpisodeRow.created_at > run)
        if self.role is not None or self.adapter_version is not None:
            cond = [StepRow.episode_id == EpisodeRow.id]
            if self.role is not None:
                cond.append(StepRow.role == self.role)
            if self.adapter_version is not None:
                cond.append(StepRow.adapter_version == self.adapter_version)
            out.append(exists().where(*cond))
        if self.reward is not None:
            cond = [
                RewardRow.episode_id == EpisodeRow.id,
                RewardRow.name == self.reward,
                RewardRow.step_order.is_(None),
            ]
            if self.min_reward is not None:
                cond.append(RewardRow.value >= self.min_reward)
            if self.max_reward is not None:
                cond.append(RewardRow.value <= self.max_reward)
            out.append(exists().where(*cond))
        elif self.min_reward is not None or self.max_reward is not None:
            raise InvalidInput("min_reward/max_reward need reward=<component name>")
        if self.job_ids is not None:
            out.append(EpisodeRow.job_id.in_(list(self.job_ids)))
        if not self.evaluations:  # NOT EXISTS: an episode without a job stays in
            out.append(~exists().where(EvalQuestionRow.job_id == EpisodeRow.job_id))
        return out


def _bind_time(conn: Connection, t: datetime) -> datetime:
    t = utc(t)
    return t.replace(tzinfo=None) if conn.dialect.name == "sqlite" else t


def iter_trajectories(conn: Connection, f: EpisodeFilter, batch_size: int) -> Iterator[Trajectory]:
    """Trajectories matching ``f``, oldest first, ``batch_size`` episodes per query."""
    if batch_size <= 0:
        raise InvalidInput(f"batch_size={batch_size} must be positive")
    clauses = f.clauses(conn)
    last: tuple[datetime, str] | None = None
    while True:
        stmt = select(EpisodeRow).where(*clauses)
        if last is not None:
            stmt = stmt.where(
                or_(
                    EpisodeRow.created_at > last[0],
                    and_(EpisodeRow.created_at == last[0], EpisodeRow.id > last[1]),
                )
            )
        rows = conn.execute(
            stmt.order_by(EpisodeRow.created_at, EpisodeRow.id).limit(batch_size)
        ).all()
        if not rows:
            return
        yield from _assemble(conn, rows, f.role)
        last = (rows[-1].created_at, rows[-1].id)


def iter_groups(
    conn: Connection, f: EpisodeFilter, min_rollouts: int, batch_size: int
) -> Iterator[Group]:
    """Groups of >= ``min_rollouts`` matching episodes per question, ``batch_size`` per query."""
    if min_rollouts < 1 or batch_size <= 0:
        raise InvalidInput("min_rollouts and batch_size must be positive")
    clauses = f.clauses(conn)
    last = ""
    while True:
        keys = list(
            conn.execute(
                select(EpisodeRow.question_key)
                .where(*clauses, EpisodeRow.question_key > last)
                .group_by(EpisodeRow.question_key)
                .having(func.count() >= min_rollouts)
                .order_by(EpisodeRow.question_key)
                .limit(batch_size)
            ).scalars()
        )
        if not keys:
            return
        rows = conn.execute(
            select(EpisodeRow)
            .where(*clauses, EpisodeRow.question_key.in_(keys))
            .order_by(EpisodeRow.question_key, EpisodeRow.created_at, EpisodeRow.id)
        ).all()
        grouped: dict[str, list[Trajectory]] = defaultdict(list)
        for t in _assemble(conn, rows, f.role):
            grouped[t.episode.question_key].append(t)
        for key in keys:
            yield Group(key, grouped[key])
        last = keys[-1]


def trajectories(conn: Connection, episode_ids: Sequence[str]) -> list[Trajectory]:
    rows = conn.execute(select(EpisodeRow).where(EpisodeRow.id.in_(list(episode_ids)))).all()
    return _assemble(conn, rows, None)


def _assemble(conn: Connection, rows: Sequence[Any], role: str | None) -> list[Trajectory]:
    ids = [r.id for r in rows]
    step_stmt = select(StepRow.__table__).where(StepRow.episode_id.in_(ids))
    if role is not None:
        step_stmt = step_stmt.where(StepRow.role == role)
    steps: dict[str, list[StepRecord]] = defaultdict(list)
    for s in conn.execute(step_stmt.order_by(StepRow.episode_id, StepRow.step_order)):
        steps[s.episode_id].append(_step(s))
    rewards: dict[str, list[RewardRecord]] = defaultdict(list)
    for r in conn.execute(
        select(RewardRow).where(RewardRow.episode_id.in_(ids)).order_by(RewardRow.id)
    ):
        rewards[r.episode_id].append(
            RewardRecord(
                r.id, r.episode_id, r.step_order, r.name, r.value, r.source, utc(r.created_at)
            )
        )
    out = []
    for r in rows:
        out.append(Trajectory(episode_record(r), steps.get(r.id, []), rewards.get(r.id, [])))
    return out


def episode_record(r: Any) -> EpisodeRecord:
    """An `EpisodeRecord` from an episode row (any object with its columns as attributes)."""
    return EpisodeRecord(
        r.id,
        r.job_id,
        r.group_id,
        r.rollout_index,
        r.question_key,
        r.answer,
        r.choice,
        r.confidence,
        r.frames_used,
        r.rounds,
        r.latency_s,
        r.thread_id,
        r.n_steps,
        utc(r.created_at),
        getattr(r, "worker", None),
    )


def _step(s: Any) -> StepRecord:
    return StepRecord(
        s.id,
        s.episode_id,
        s.step_order,
        s.role,
        s.adapter_version,
        s.prompt,
        list(map(tuple, s.frames)),
        s.completion,
        decode_ids(s.token_ids),
        decode_logprobs(s.logprobs),
        s.parsed,
        s.parse_ok,
        s.truncated,
        s.latency_s,
        s.prompt_tokens,
        s.completion_tokens,
        s.messages,
        isinstance(s.prompt, DamagedText) or isinstance(s.completion, DamagedText),
    )


def _run_record(conn: Connection, row: Any) -> TrainingRunRecord:
    n = conn.execute(
        select(func.count()).where(TrainingRunEpisodeRow.training_run_id == row.id)
    ).scalar()
    m = dict(row._mapping)
    m["created_at"], m["finished_at"] = utc(m["created_at"]), utc_or_none(m["finished_at"])
    return TrainingRunRecord.model_validate({**m, "n_episodes": int(n or 0)})


def training_run(conn: Connection, run_id: str) -> TrainingRunRecord:
    row = conn.execute(select(TrainingRunRow).where(TrainingRunRow.id == run_id)).first()
    if row is None:
        raise NotFound(f"training run {run_id!r} does not exist")
    return _run_record(conn, row)


def training_runs(conn: Connection) -> list[TrainingRunRecord]:
    rows = conn.execute(select(TrainingRunRow).order_by(TrainingRunRow.created_at)).all()
    return [_run_record(conn, r) for r in rows]

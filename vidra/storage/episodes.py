"""The store's episodes: each recorded with its steps and rewards in one transaction, read
back exactly (token ids, logprobs, prompt layout), streamed in bounded batches for training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from vidra.errors import NotFound, StorageError
from vidra.storage import queries
from vidra.storage.codec import encode_ids, encode_logprobs, truncate
from vidra.storage.db import Database
from vidra.storage.ids import new_id, validate
from vidra.storage.orm import EpisodeRow, JobRow, RewardRow, StepRow, utcnow
from vidra.storage.records import EpisodeIn, EpisodeRecord, Group, RewardIn, Trajectory

__all__ = ["EpisodePart"]


class EpisodePart:
    """Episodes, their steps and reward components."""

    db: Database
    max_text_chars: int

    def record_episode(self, episode: EpisodeIn | dict[str, Any]) -> str:
        """Record one episode with its steps and rewards in one transaction; returns its id."""
        return self.record_episodes([episode])[0]

    def record_episodes(self, episodes: Sequence[EpisodeIn | dict[str, Any]]) -> list[str]:
        """Record several episodes in one transaction (all or nothing); returns their ids."""
        eps = [validate(EpisodeIn, e, f"episode[{k}]") for k, e in enumerate(episodes)]
        ids = [new_id() for _ in eps]
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
            return self.db.write(run)
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
        items = [validate(RewardIn, r, f"reward[{k}]") for k, r in enumerate(rewards)]
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

        self.db.write(run)

    def get_episode(self, episode_id: str) -> Trajectory:
        """An episode with its steps and rewards. Raises `NotFound` for unknown ids."""
        found = self.db.read(lambda conn: queries.trajectories(conn, [episode_id]))
        if not found:
            raise NotFound(f"episode {episode_id!r} does not exist")
        return found[0]

    def pass_rates(
        self, question_keys: Sequence[str], reward: str = "accuracy", evaluations: bool = False
    ) -> dict[str, tuple[float, int]]:
        """``question key -> (mean of reward, episodes)`` over the recorded episodes of each
        question that have the reward (the curriculum's pass rates). Evaluation runs'
        episodes count only with ``evaluations`` (unlike `EpisodeFilter`'s default: a pass
        rate is of the training rollouts the curriculum chooses between)."""
        from sqlalchemy import func

        if not question_keys:
            return {}
        stmt = (
            select(EpisodeRow.question_key, func.avg(RewardRow.value), func.count())
            .join(RewardRow, RewardRow.episode_id == EpisodeRow.id)
            .where(
                EpisodeRow.question_key.in_(list(question_keys)),
                RewardRow.name == reward,
                RewardRow.step_order.is_(None),
            )
            .group_by(EpisodeRow.question_key)
        )
        only = queries.EpisodeFilter(evaluations=evaluations)
        rows = self.db.read(lambda conn: conn.execute(stmt.where(*only.clauses(conn))).all())
        return {k: (float(avg), int(n)) for k, avg, n in rows}

    def episodes_of_job(self, job_id: str) -> list[EpisodeRecord]:
        stmt = select(EpisodeRow).where(EpisodeRow.job_id == job_id)
        rows = self.db.read(
            lambda conn: conn.execute(stmt.order_by(EpisodeRow.rollout_index)).all()
        )
        return [queries.episode_record(r) for r in rows]

    # training queries -----------------------------------------------------------------------

    def iter_trajectories(self, batch_size: int = 500, **filters: Any) -> Iterator[Trajectory]:
        """Stream trajectories oldest first in batches; see `queries.EpisodeFilter` for filters."""
        f = queries.EpisodeFilter(**filters)
        with self.db.reading() as conn:
            yield from queries.iter_trajectories(conn, f, batch_size)

    def iter_groups(
        self, min_rollouts: int = 2, batch_size: int = 100, **filters: Any
    ) -> Iterator[Group]:
        """Stream groups of >= ``min_rollouts`` episodes of one question, in batches."""
        f = queries.EpisodeFilter(**filters)
        with self.db.reading() as conn:
            yield from queries.iter_groups(conn, f, min_rollouts, batch_size)


def _reward_row(eid: str, r: RewardIn, now: datetime) -> dict[str, Any]:
    return {
        "episode_id": eid,
        "step_order": r.step_order,
        "name": r.name,
        "value": r.value,
        "source": r.source,
        "created_at": now,
    }

"""The store's jobs: creation, the status machine, and leases.

A job runs in the process that holds its lease (``owner`` + ``heartbeat_at``, renewed while
it runs). `claim_job` takes a queued job, or a running one whose lease expired (its process
died or lost the database), atomically, so two processes never run one job; status changes
by a lease holder are guarded by its owner id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from vidra.errors import IllegalTransition, NotFound
from vidra.storage.db import Database
from vidra.storage.evals import upsert_eval_question
from vidra.storage.ids import new_id, question_key, validate
from vidra.storage.orm import JobRow, VideoRow, utcnow
from vidra.storage.records import JobCreate, JobRecord, JobStatus

__all__ = ["TRANSITIONS", "JobPart"]

TRANSITIONS: dict[str, set[str]] = {
    "queued": {"running", "cancelled"},
    "running": {"done", "failed", "cancelled", "queued"},  # queued again: resumable
    "done": set(),
    "failed": set(),
    "cancelled": set(),
}


def _bind(conn: Connection, t: datetime) -> datetime:
    """A UTC time as the backend compares it (SQLite keeps naive UTC)."""
    return t.replace(tzinfo=None) if conn.dialect.name == "sqlite" else t


class JobPart:
    """Jobs: what was asked, where it stands, and who runs it."""

    db: Database

    def create_job(
        self, job: JobCreate | dict[str, Any], eval_question: tuple[str, str] | None = None
    ) -> JobRecord:
        """Create a queued job for a registered video; ``eval_question`` (run id, question
        id): linked to that question of an evaluation run, queued, in the same transaction, so
        a crash never leaves an evaluation's job unlinked (training would read its episodes)."""
        j = validate(JobCreate, job, "job")

        def run(conn: Connection) -> dict[str, Any]:
            content = conn.execute(
                select(VideoRow.content_hash).where(VideoRow.id == j.video_id)
            ).scalar()
            if content is None:
                raise NotFound(f"video {j.video_id!r} is not in the store; register it first")
            values = {
                "id": new_id(),
                **j.model_dump(),
                "question_key": question_key(content, j.question, j.options),
                "status": "queued",
                "error": None,
                "created_at": utcnow(),
                "started_at": None,
                "finished_at": None,
            }
            conn.execute(insert(JobRow).values(**values))
            if eval_question is not None:
                upsert_eval_question(conn, *eval_question, "queued", job_id=values["id"])
            return values

        return JobRecord.model_validate(self.db.write(run))

    def get_job(self, job_id: str) -> JobRecord:
        row = self.db.read(
            lambda conn: conn.execute(select(JobRow).where(JobRow.id == job_id)).first()
        )
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist; list jobs with `vidra jobs`")
        return JobRecord.model_validate(row._mapping)

    def jobs(
        self, status: JobStatus | Sequence[str] | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Most recent jobs first, optionally only those in ``status``."""
        stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            stmt = stmt.where(JobRow.status.in_(wanted))
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        return [JobRecord.model_validate(r._mapping) for r in rows]

    def set_job_status(
        self, job_id: str, status: JobStatus, error: str | None = None, owner: str | None = None
    ) -> JobRecord:
        """Move a job along queued -> running -> done | failed | cancelled (atomically).

        With ``owner``, only the lease holder's change applies (a process that lost its
        lease cannot finish a job another process took over).

        Raises:
            NotFound: unknown job. IllegalTransition: a move the state machine forbids, or
            the job is leased by another owner.
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
        if status == "queued":
            values.update(owner=None, heartbeat_at=None)
        where = [JobRow.id == job_id, JobRow.status.in_(allowed_from)]
        if owner is not None:
            where.append(or_(JobRow.owner == owner, JobRow.owner.is_(None)))

        def run(conn: Connection) -> int:
            return int(conn.execute(update(JobRow).where(*where).values(**values)).rowcount)

        if self.db.write(run) == 0:
            current = self.get_job(job_id)  # raises NotFound for unknown ids
            if owner is not None and current.owner not in (None, owner):
                raise IllegalTransition(
                    f"job {job_id} is leased by {current.owner}, not {owner}; "
                    "it was taken over after this process lost its lease"
                )
            raise IllegalTransition(
                f"job {job_id} cannot go from {current.status!r} to {status!r}; allowed from "
                f"{current.status!r}: {sorted(TRANSITIONS[current.status]) or 'nothing (final)'}"
            )
        return self.get_job(job_id)

    def claim_job(self, job_id: str, owner: str, lease_s: float) -> JobRecord | None:
        """Take the lease on a job and mark it running; None when it is not runnable here
        (finished, or running under another owner whose lease has not expired)."""
        now = utcnow()

        def run(conn: Connection) -> int:
            stale = _bind(conn, now - timedelta(seconds=lease_s))
            free = or_(
                JobRow.owner.is_(None),
                JobRow.owner == owner,
                JobRow.heartbeat_at.is_(None),
                JobRow.heartbeat_at < stale,
            )
            stmt = (
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    or_(JobRow.status == "queued", and_(JobRow.status == "running", free)),
                )
                .values(
                    status="running",
                    owner=owner,
                    heartbeat_at=now,
                    error=None,
                    started_at=func.coalesce(JobRow.started_at, now),
                )
            )
            return int(conn.execute(stmt).rowcount)

        if self.db.write(run) == 0:
            self.get_job(job_id)  # NotFound for unknown ids
            return None
        return self.get_job(job_id)

    def heartbeat(self, owner: str, job_ids: Sequence[str]) -> int:
        """Renew ``owner``'s leases on ``job_ids``; returns how many it still holds."""
        if not job_ids:
            return 0

        def run(conn: Connection) -> int:
            stmt = (
                update(JobRow)
                .where(
                    JobRow.id.in_(list(job_ids)),
                    JobRow.owner == owner,
                    JobRow.status == "running",
                )
                .values(heartbeat_at=utcnow())
            )
            return int(conn.execute(stmt).rowcount)

        return self.db.write(run)

    def resumable_jobs(self, lease_s: float, owner: str | None = None) -> list[JobRecord]:
        """Jobs `resume` may take, oldest first: queued ones, and running ones whose lease
        expired (or that ``owner`` itself holds)."""
        now = utcnow()

        def run(conn: Connection) -> list[Any]:
            stale = _bind(conn, now - timedelta(seconds=lease_s))
            expired = or_(
                JobRow.owner.is_(None), JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < stale
            )
            if owner is not None:
                expired = or_(expired, JobRow.owner == owner)
            stmt = (
                select(JobRow)
                .where(or_(JobRow.status == "queued", and_(JobRow.status == "running", expired)))
                .order_by(JobRow.created_at, JobRow.id)
            )
            return list(conn.execute(stmt).all())

        return [JobRecord.model_validate(r._mapping) for r in self.db.read(run)]

"""The store's evaluation runs: each question of a run linked to the job that answered it, so
a re-run of the same evaluation (same key) skips what is finished and every evaluated answer
stays a trajectory in SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from vidra.errors import NotFound
from vidra.storage.db import Database
from vidra.storage.ids import new_id
from vidra.storage.orm import EvalQuestionRow, EvalRunRow, utcnow
from vidra.storage.queries import utc, utc_or_none
from vidra.storage.records import EvalQuestionRecord, EvalRunRecord

__all__ = ["EvalPart", "upsert_eval_question"]


def _no_run(run_id: str) -> NotFound:
    return NotFound(f"evaluation run {run_id!r} does not exist; list them with `vidra eval runs`")


def upsert_eval_question(
    conn: Connection,
    run_id: str,
    qid: str,
    status: str,
    job_id: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Record (or update) one question of a run, inside the caller's transaction.

    Raises:
        NotFound: no evaluation run ``run_id`` (the transaction is rolled back).
    """
    if conn.execute(select(EvalRunRow.id).where(EvalRunRow.id == run_id)).first() is None:
        raise _no_run(run_id)
    where = (EvalQuestionRow.eval_run_id == run_id, EvalQuestionRow.qid == qid)
    values: dict[str, Any] = {"status": status, "result": result or {}}
    if job_id is not None:
        values["job_id"] = job_id
    if conn.execute(update(EvalQuestionRow).where(*where).values(**values)).rowcount:
        return
    conn.execute(
        insert(EvalQuestionRow).values(eval_run_id=run_id, qid=qid, job_id=job_id,
                                       status=status, result=result or {})
    )  # fmt: skip


def _run(row: Any) -> EvalRunRecord:
    m = dict(row._mapping)
    m["created_at"], m["finished_at"] = utc(m["created_at"]), utc_or_none(m["finished_at"])
    return EvalRunRecord.model_validate(m)


class EvalPart:
    """Evaluation runs and their questions."""

    db: Database

    def create_eval_run(self, task: str, key: str, config: dict[str, Any]) -> EvalRunRecord:
        values = {
            "id": new_id(),
            "task": task,
            "key": key,
            "config": config,
            "status": "running",
            "mlflow_run_id": None,
            "metrics": {},
            "created_at": utcnow(),
            "finished_at": None,
        }
        self.db.write(lambda conn: conn.execute(insert(EvalRunRow).values(**values)))
        return EvalRunRecord.model_validate(values)

    def find_eval_run(self, key: str) -> EvalRunRecord | None:
        """The newest run with ``key`` (the same task, data, model and configuration)."""
        stmt = select(EvalRunRow).where(EvalRunRow.key == key).order_by(EvalRunRow.created_at)
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        return _run(rows[-1]) if rows else None

    def get_eval_run(self, run_id: str) -> EvalRunRecord:
        stmt = select(EvalRunRow).where(EvalRunRow.id == run_id)
        row = self.db.read(lambda conn: conn.execute(stmt).first())
        if row is None:
            raise _no_run(run_id)
        return _run(row)

    def eval_runs(self, task: str | None = None) -> list[EvalRunRecord]:
        stmt = select(EvalRunRow).order_by(EvalRunRow.created_at)
        if task is not None:
            stmt = stmt.where(EvalRunRow.task == task)
        return [_run(r) for r in self.db.read(lambda conn: conn.execute(stmt).all())]

    def finish_eval_run(
        self, run_id: str, status: str, metrics: dict[str, Any], mlflow_run_id: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "metrics": metrics, "finished_at": utcnow()}
        if mlflow_run_id is not None:
            values["mlflow_run_id"] = mlflow_run_id
        stmt = update(EvalRunRow).where(EvalRunRow.id == run_id).values(**values)
        self.db.write(lambda conn: conn.execute(stmt))

    def eval_questions(self, run_id: str) -> list[EvalQuestionRecord]:
        stmt = select(EvalQuestionRow).where(EvalQuestionRow.eval_run_id == run_id)
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        return [EvalQuestionRecord.model_validate(r._mapping) for r in rows]

    def put_eval_question(
        self,
        run_id: str,
        qid: str,
        status: str,
        job_id: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Record (or update) one question of a run."""
        self.db.write(lambda conn: upsert_eval_question(conn, run_id, qid, status, job_id, result))

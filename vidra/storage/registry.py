"""The store's training runs and its mirror of the model registry.

The store is the source of truth for which version of each role is ``champion``: a cycle's
champions move together in one transaction (`promote`), and MLflow's aliases follow (a
half-done alias update is put back by `vidra.rl.tracking.reconcile`). Versions are keyed by
the MLflow tracking store they live in, so a new tracking store (numbering from 1 again)
never collides with an old one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from vidra.errors import NotFound, StorageError
from vidra.storage import queries
from vidra.storage.db import Database
from vidra.storage.engine import json_text
from vidra.storage.ids import new_id
from vidra.storage.orm import ModelVersionRow, TrainingRunEpisodeRow, TrainingRunRow, utcnow
from vidra.storage.records import ModelVersionRecord, TrainingRunRecord

__all__ = ["RegistryPart"]

CHAMPION = "champion"


class RegistryPart:
    """Training runs (with lineage and promotion state) and registered model versions."""

    db: Database

    # model versions -------------------------------------------------------------------------

    def record_model_version(
        self,
        role: str,
        registry_name: str,
        version: str,
        mlflow_run_id: str | None = None,
        metrics: dict[str, Any] | None = None,
        tracking_uri: str = "",
        source: str | None = None,
    ) -> ModelVersionRecord:
        """Mirror a registered version; recording the same (store, name, version) again
        returns the existing record (a retried cycle step is harmless)."""
        values = {
            "id": new_id(),
            "role": role,
            "registry_name": registry_name,
            "version": str(version),
            "mlflow_run_id": mlflow_run_id,
            "alias": None,
            "metrics": json.loads(json_text(metrics or {})),  # as stored: NaN -> null
            "created_at": utcnow(),
            "tracking_uri": tracking_uri,
            "source": source,
        }
        try:
            self.db.write(lambda conn: conn.execute(insert(ModelVersionRow).values(**values)))
        except IntegrityError:
            found = self._version(tracking_uri, registry_name, str(version))
            if found is None or found.mlflow_run_id != mlflow_run_id:
                raise StorageError(
                    f"{registry_name} v{version} of tracking store {tracking_uri or 'default'} "
                    "is already recorded for another run; the registry and the store disagree "
                    "(was the MLflow store reset?)"
                ) from None
            return found
        return ModelVersionRecord.model_validate(values)

    def _version(self, tracking_uri: str, name: str, version: str) -> ModelVersionRecord | None:
        row = self.db.read(
            lambda conn: conn.execute(
                select(ModelVersionRow).where(
                    ModelVersionRow.tracking_uri == tracking_uri,
                    ModelVersionRow.registry_name == name,
                    ModelVersionRow.version == version,
                )
            ).first()
        )
        return None if row is None else ModelVersionRecord.model_validate(row._mapping)

    def set_alias(
        self, registry_name: str, version: str, alias: str, tracking_uri: str = ""
    ) -> None:
        """Point ``alias`` at one version of a registered model (moving it off the others)."""
        self.db.write(lambda conn: _move_alias(conn, tracking_uri, registry_name, version, alias))

    def model_versions(
        self, role: str | None = None, tracking_uri: str | None = None
    ) -> list[ModelVersionRecord]:
        stmt = select(ModelVersionRow).order_by(ModelVersionRow.created_at)
        if role is not None:
            stmt = stmt.where(ModelVersionRow.role == role)
        if tracking_uri is not None:
            stmt = stmt.where(ModelVersionRow.tracking_uri == tracking_uri)
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        return [ModelVersionRecord.model_validate(r._mapping) for r in rows]

    def champions(self, tracking_uri: str, alias: str = CHAMPION) -> dict[str, ModelVersionRecord]:
        """Each role's version carrying ``alias`` in ``tracking_uri``'s registry."""
        return {
            v.role: v for v in self.model_versions(tracking_uri=tracking_uri) if v.alias == alias
        }

    def promote(
        self,
        run_id: str,
        versions: Mapping[str, tuple[str, str]],
        tracking_uri: str,
        alias: str = CHAMPION,
    ) -> None:
        """Move ``alias`` to every ``role -> (registry name, version)`` at once and mark the
        run's promotion done: all roles or none (one transaction)."""

        def run(conn: Connection) -> None:
            for name, version in versions.values():
                _move_alias(conn, tracking_uri, name, version, alias)
            _set_promotion(conn, run_id, "done")

        self.db.write(run)

    # training runs --------------------------------------------------------------------------

    def create_training_run(
        self, algorithm: str, config: dict[str, Any], episode_ids: Sequence[str]
    ) -> TrainingRunRecord:
        """Record a training run and its lineage (the episodes it learns from)."""
        rid = new_id()
        values = {
            "id": rid,
            "algorithm": algorithm,
            "config": config,
            "mlflow_run_id": None,
            "status": "running",
            "metrics": {},
            "created_at": utcnow(),
            "finished_at": None,
            "promotion": None,
        }

        def run(conn: Connection) -> None:
            conn.execute(insert(TrainingRunRow).values(**values))
            if episode_ids:
                conn.execute(
                    insert(TrainingRunEpisodeRow),
                    [{"training_run_id": rid, "episode_id": e} for e in dict.fromkeys(episode_ids)],
                )

        try:
            self.db.write(run)
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
        values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
        if metrics is not None:
            values["metrics"] = metrics
        if mlflow_run_id is not None:
            values["mlflow_run_id"] = mlflow_run_id
        stmt = update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(**values)
        if self.db.write(lambda conn: int(conn.execute(stmt).rowcount)) == 0:
            raise NotFound(f"training run {run_id!r} does not exist")
        return self.get_training_run(run_id)

    def set_promotion(self, run_id: str, state: str, **details: Any) -> None:
        """Record how far a run's promotion got (``pending``, ``done``, ``rolled_back``...)."""
        self.db.write(lambda conn: _set_promotion(conn, run_id, state, details))

    def get_training_run(self, run_id: str) -> TrainingRunRecord:
        return self.db.read(lambda conn: queries.training_run(conn, run_id))

    def training_runs(self, status: str | None = None) -> list[TrainingRunRecord]:
        runs = self.db.read(queries.training_runs)
        return [r for r in runs if status is None or r.status == status]

    def last_successful_run(self) -> TrainingRunRecord | None:
        """The newest training run that finished ``done`` (failed runs never hide data)."""
        done = self.training_runs("done")
        return done[-1] if done else None


def _move_alias(conn: Connection, uri: str, name: str, version: str, alias: str) -> None:
    base = [ModelVersionRow.tracking_uri == uri, ModelVersionRow.registry_name == name]
    conn.execute(
        update(ModelVersionRow).where(*base, ModelVersionRow.alias == alias).values(alias=None)
    )
    res = conn.execute(
        update(ModelVersionRow)
        .where(*base, ModelVersionRow.version == str(version))
        .values(alias=alias)
    )
    if res.rowcount == 0:
        raise NotFound(f"model version {name} v{version} is not recorded")


def _set_promotion(
    conn: Connection, run_id: str, state: str, details: dict[str, Any] | None = None
) -> None:
    current = conn.execute(
        select(TrainingRunRow.promotion).where(TrainingRunRow.id == run_id)
    ).first()
    if current is None:
        raise NotFound(f"training run {run_id!r} does not exist")
    value = {**(current[0] or {}), **(details or {}), "state": state}
    conn.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(promotion=value))

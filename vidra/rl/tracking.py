"""MLflow tracking and the model registry: runs, metrics, adapter artifacts, registered models
``vidra-<role>`` and their ``champion`` alias. Absolute paths always (MLflow 3 defaults to
./mlflow.db and ./mlruns otherwise).

Every MLflow HTTP call has a bounded time (``mlflow.timeout_s``, ``mlflow.retries``); once a
call finds the server dead the tracker stops calling it (`TrackingUnavailable`), so a cycle
fails in bounded time. The trajectory store decides which version is champion; MLflow's
aliases mirror it, and `reconcile` puts back what a failure left half done.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vidra.agents.roles import ROLES
from vidra.config import Settings
from vidra.errors import BackendUnavailable, ConfigError, TrackingUnavailable
from vidra.storage import TrajectoryStore

__all__ = [
    "CHAMPION",
    "Tracker",
    "champion_adapters",
    "champion_dir",
    "configure_http",
    "open_mlflow",
    "reconcile",
    "registry_name",
]

log = logging.getLogger(__name__)
CHAMPION = "champion"
T = TypeVar("T")


def registry_name(role: str) -> str:
    return f"vidra-{role}"


def configure_http(settings: Settings) -> None:
    """Bound MLflow's HTTP calls (read per request from the environment) and silence its
    artifact progress bars (a default the user's environment overrides)."""
    m = settings.mlflow
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(m.timeout_s)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(m.retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0.2"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _check_server(uri: str, timeout_s: float) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as resp:
            resp.read()
    except OSError as exc:
        raise TrackingUnavailable(
            f"the MLflow tracking server {uri} is unreachable ({exc}); start it or fix "
            "VIDRA_MLFLOW__TRACKING_URI"
        ) from exc


def open_mlflow(settings: Settings, experiment: str | None = None) -> Any:
    """The ``mlflow`` module pointed at the configured tracking store and ``experiment``
    (default: ``mlflow.experiment``), HTTP calls bounded; checked reachable first."""
    return _mlflow(settings, experiment)


def _mlflow(settings: Settings, experiment: str | None = None) -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise BackendUnavailable("mlflow", "train", str(exc)) from exc
    configure_http(settings)
    uri = settings.resolved_tracking_uri()
    if uri.startswith(("http://", "https://")):
        _check_server(uri, settings.mlflow.timeout_s)
    elif uri.startswith(("ftp:", "sftp:")):
        raise ConfigError(f"VIDRA_MLFLOW__TRACKING_URI: {uri!r} is not a tracking store")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = experiment or settings.mlflow.experiment
    if mlflow.get_experiment_by_name(name) is None:
        location = None if uri.startswith("http") else (settings.data_dir / "mlruns").absolute()
        mlflow.create_experiment(name, artifact_location=location.as_uri() if location else None)
    mlflow.set_experiment(name)
    return mlflow


def _dead(exc: BaseException) -> bool:
    """Is this MLflow/requests error the server being gone (not a bad request)?"""
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(
        s in text
        for s in ("connection", "timeout", "timed out", "max retries", "refused",
                  "unreachable", "remote end closed", "broken pipe")
    )  # fmt: skip


class Tracker:
    """One MLflow run of a retraining cycle (checked reachable before any training)."""

    def __init__(self, settings: Settings, run_name: str) -> None:
        self.settings = settings
        self.uri = settings.resolved_tracking_uri()
        self.dead: TrackingUnavailable | None = None
        self.mlflow = self._call(lambda: _mlflow(settings))
        self.client = self.mlflow.tracking.MlflowClient()
        run = self._call(lambda: self.client.create_run(
            self.mlflow.get_experiment_by_name(settings.mlflow.experiment).experiment_id,
            run_name=run_name,
        ))  # fmt: skip
        self.run_id: str = run.info.run_id
        self.artifact_uri: str = run.info.artifact_uri

    def _call(self, fn: Callable[[], T]) -> T:
        if self.dead is not None:
            raise self.dead
        try:
            return fn()
        except TrackingUnavailable as exc:
            self.dead = exc
            raise
        except Exception as exc:
            if not _dead(exc):
                raise
            self.dead = TrackingUnavailable(
                f"the MLflow tracking server {self.uri} stopped answering ({str(exc)[:200]}); "
                "the cycle was stopped and marked failed; restart the server and retrain"
            )
            raise self.dead from exc

    def params(self, values: dict[str, Any]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, str(v)[:500]) for k, v in values.items()]
        self._call(lambda: self.client.log_batch(self.run_id, params=batch))

    def metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in values.items()]
        self._call(lambda: self.client.log_batch(self.run_id, metrics=batch))

    def artifacts(self, path: Path, name: str) -> None:
        self._call(lambda: self.client.log_artifacts(self.run_id, str(path), artifact_path=name))

    def register(self, role: str) -> str:
        """Register this run's ``adapters/<role>`` as a new version of ``vidra-<role>``."""
        name = registry_name(role)

        def run() -> str:
            try:
                self.client.get_registered_model(name)
            except Exception as exc:
                if _dead(exc):
                    raise
                self.client.create_registered_model(name, description=f"vidra {role} adapter")
            source = self.source(role)
            return str(self.client.create_model_version(name, source, run_id=self.run_id).version)

        return self._call(run)

    def source(self, role: str) -> str:
        return f"{self.artifact_uri}/adapters/{role}"

    def set_alias(self, role: str, version: str) -> None:
        self._call(
            lambda: self.client.set_registered_model_alias(registry_name(role), CHAMPION, version)
        )

    def end(self, status: str = "FINISHED") -> None:
        self._call(lambda: self.client.set_terminated(self.run_id, status))


def champion_dir(settings: Settings, role: str, version: str) -> Path:
    """Where the adapter of ``role`` version ``version`` of this tracking store is cached."""
    store = hashlib.sha1(settings.resolved_tracking_uri().encode()).hexdigest()[:10]
    return settings.data_dir / "champions" / store / role / str(version)


def champion_adapters(
    settings: Settings, store: TrajectoryStore, roles: list[str]
) -> dict[str, str]:
    """Local directories of each role's champion, as the store records it (downloaded from
    the tracking store once, then cached)."""
    champions = store.champions(settings.resolved_tracking_uri())
    return {
        role: _local_adapter(settings, role, mv.version, mv.source)
        for role in roles
        if (mv := champions.get(role)) is not None and mv.source
    }


def version_adapters(
    settings: Settings, store: TrajectoryStore, versions: dict[str, str]
) -> dict[str, str]:
    """Local directories of the given versions (role -> version, e.g. a training run's
    candidates, promoted or not), downloaded once like the champions'."""
    out: dict[str, str] = {}
    for role, version in versions.items():
        recs = store.model_versions(role, settings.resolved_tracking_uri())
        rec = next((v for v in recs if v.version == version), None)
        if rec is not None and rec.source:
            out[role] = _local_adapter(settings, role, rec.version, rec.source)
    return out


def _local_adapter(settings: Settings, role: str, version: str, source: str) -> str:
    dst = champion_dir(settings, role, version)
    if not (dst / "adapter_config.json").is_file():
        mlflow = _mlflow(settings)
        dst.mkdir(parents=True, exist_ok=True)
        dst = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    return str(dst)


def reconcile(settings: Settings, store: TrajectoryStore) -> list[str]:
    """Make MLflow agree with the store after a failure: each role's ``champion`` alias back
    on the store's champion version, and runs the store marked failed also FAILED in MLflow.
    Returns what it changed (nothing when MLflow already agreed)."""
    uri = settings.resolved_tracking_uri()
    champions = store.champions(uri)
    pending = [r for r in store.training_runs("failed") if (r.promotion or {}).get("mlflow_end")]
    half = [r for r in store.training_runs() if (r.promotion or {}).get("state") == "pending"]
    if not pending and not half and not champions:
        return []
    mlflow = _mlflow(settings)
    client = mlflow.tracking.MlflowClient()
    changed = []
    for role in ROLES:
        name, want = registry_name(role), champions.get(role)
        try:
            current: str | None = str(client.get_model_version_by_alias(name, CHAMPION).version)
        except Exception as exc:
            if _dead(exc):
                raise
            current = None
        target = want.version if want is not None else None
        if current == target:
            continue
        if target is None:
            client.delete_registered_model_alias(name, CHAMPION)
        else:
            client.set_registered_model_alias(name, CHAMPION, target)
        changed.append(f"{name}: champion {current} -> {target}")
    for r in half:  # promotion interrupted before the store moved: aliases are now restored
        store.set_promotion(r.id, "rolled_back")
        changed.append(f"run {r.id}: unfinished promotion rolled back")
    for r in pending:
        if r.mlflow_run_id:
            client.set_terminated(r.mlflow_run_id, "FAILED")
        state = (store.get_training_run(r.id).promotion or {}).get("state", "none")
        store.set_promotion(r.id, state, mlflow_end=False)
        changed.append(f"run {r.id}: MLflow run {r.mlflow_run_id} marked FAILED")
    for line in changed:
        log.warning("reconciled: %s", line)
    return changed

"""MLflow tracking and the model registry: runs, metrics, adapter artifacts, registered models
``vidra-<role>`` and their ``champion`` alias. Absolute paths always (MLflow 3 defaults to
./mlflow.db and ./mlruns otherwise).
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable, ConfigError

__all__ = ["Tracker", "champion_adapters", "registry_name"]

log = logging.getLogger(__name__)
CHAMPION = "champion"


def registry_name(role: str) -> str:
    return f"vidra-{role}"


def _mlflow(settings: Settings) -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise BackendUnavailable("mlflow", "train", str(exc)) from exc
    uri = settings.resolved_tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except OSError as exc:
            raise ConfigError(
                f"the MLflow tracking server {uri} is unreachable ({exc}); start it or fix "
                "VIDRA_MLFLOW__TRACKING_URI before training"
            ) from exc
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(settings.mlflow.experiment) is None:
        location = None if uri.startswith("http") else (settings.data_dir / "mlruns").absolute()
        mlflow.create_experiment(
            settings.mlflow.experiment, artifact_location=location.as_uri() if location else None
        )
    mlflow.set_experiment(settings.mlflow.experiment)
    return mlflow


class Tracker:
    """One MLflow run of a retraining cycle (checked reachable before any training)."""

    def __init__(self, settings: Settings, run_name: str) -> None:
        self.mlflow = _mlflow(settings)
        self.run = self.mlflow.start_run(run_name=run_name)
        self.run_id: str = self.run.info.run_id
        self.client = self.mlflow.tracking.MlflowClient()

    def params(self, values: dict[str, Any]) -> None:
        self.mlflow.log_params({k: str(v)[:500] for k, v in values.items()})

    def metrics(self, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.client.log_metric(self.run_id, k, float(v), step=step)

    def artifacts(self, path: Path, name: str) -> None:
        self.mlflow.log_artifacts(str(path), artifact_path=name)

    def register(self, role: str) -> str:
        """Register this run's ``adapters/<role>`` as a new version of ``vidra-<role>``."""
        name = registry_name(role)
        try:
            self.client.get_registered_model(name)
        except Exception:
            self.client.create_registered_model(name, description=f"vidra {role} LoRA adapter")
        source = f"{self.run.info.artifact_uri}/adapters/{role}"
        mv = self.client.create_model_version(name, source=source, run_id=self.run_id)
        return str(mv.version)

    def promote(self, role: str, version: str) -> None:
        self.client.set_registered_model_alias(registry_name(role), CHAMPION, version)

    def champion_version(self, role: str) -> str | None:
        try:
            return str(
                self.client.get_model_version_by_alias(registry_name(role), CHAMPION).version
            )
        except Exception:
            return None

    def end(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)


def champion_adapters(settings: Settings, roles: list[str]) -> dict[str, str]:
    """Local directories of each role's champion adapter (downloaded), where one exists."""
    mlflow = _mlflow(settings)
    client = mlflow.tracking.MlflowClient()
    out = {}
    for role in roles:
        try:
            mv = client.get_model_version_by_alias(registry_name(role), CHAMPION)
        except Exception:
            continue
        dst = settings.data_dir / "champions" / role / str(mv.version)
        if not (dst / "adapter_config.json").is_file():
            dst.mkdir(parents=True, exist_ok=True)
            path = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(dst))
            dst = Path(path)
        out[role] = str(dst)
    return out

"""Run the role trainers on Ray Train: a ``TorchTrainer`` (gloo on CPU, NCCL on GPU) with
``num_workers`` workers, checkpoints reported to Ray Train, resume from the last one.

Each worker builds the model from the base checkpoint plus the starting adapters, trains
each role in turn on its shard (`vidra.rl.trainer`), and rank 0 logs step metrics to MLflow.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable, VidraError
from vidra.ray_session import ensure_ray
from vidra.rl.datasets import Sample
from vidra.rl.trainer import TrainConfig

__all__ = ["fit"]


def _loop(config: dict[str, Any]) -> None:
    """Ray Train worker body."""
    import ray.train
    import torch

    from vidra.models.hf import HFChatModel
    from vidra.rl.replay import batch_step_frames, step_frames
    from vidra.rl.trainer import train_role
    from vidra.video import open_reader

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(1, config["world"])))
    settings = Settings.model_validate_json(config["settings"])
    cfg = TrainConfig(**config["train"])
    samples = [Sample(**s) for s in config["samples"]]
    reader = open_reader(settings)
    paths: dict[str, str] = config["paths"]
    hf = HFChatModel(config["base"], adapters=config["adapters"])
    rank = ray.train.get_context().get_world_rank()
    tracker = None
    if rank == 0 and config.get("mlflow_run"):
        import mlflow

        mlflow.set_tracking_uri(settings.resolved_tracking_uri())
        tracker = mlflow.tracking.MlflowClient()

    def frames_of(s: Sample) -> Any:
        return step_frames(s.frames, reader, paths, cfg.frame_size)

    def batch_frames(batch: Sequence[Sample]) -> list[Any]:
        return batch_step_frames([s.frames for s in batch], reader, paths, cfg.frame_size)

    start = ray.train.get_checkpoint()
    state: dict[str, Any] = {"done": [], "role": None, "step_dir": None}
    if start is not None:
        with start.as_directory() as d:
            state = json.loads((Path(d) / "state.json").read_text())
            resume_dir = Path(tempfile.mkdtemp()) / "resume"
            if state.get("step_dir"):
                import shutil

                shutil.copytree(Path(d) / "step", resume_dir)
    out_root = Path(tempfile.mkdtemp(prefix="vidra-train-"))
    progress = Path(config["out"]) / "progress.jsonl"  # one line per optimizer step (rank 0)
    for role in config["roles"]:
        if role in state["done"]:
            continue
        resume = resume_dir if start is not None and state.get("role") == role else None
        resumed_at = state.get("step") if resume is not None else None

        def report(
            metrics: dict[str, float],
            ckpt: Path | None,
            role: str = role,
            resumed_at: int | None = resumed_at,
        ) -> None:
            step = int(metrics["step"])
            named = {f"{role}/{k}": v for k, v in metrics.items()}
            if rank == 0:
                line = {
                    "role": role,
                    "step": step,
                    "resumed_from": resumed_at,
                    "pid": os.getpid(),
                    "checkpoint": ckpt is not None,
                    "world": config["world"],
                    "metrics": metrics,
                }
                with progress.open("a") as f:
                    f.write(json.dumps(line) + "\n")
            if tracker is not None:
                for k, v in named.items():
                    tracker.log_metric(config["mlflow_run"], k, float(v), step=step)
            if ckpt is None:
                ray.train.report(named)
                return
            holder = Path(tempfile.mkdtemp())
            import shutil

            shutil.copytree(ckpt, holder / "step")
            (holder / "state.json").write_text(
                json.dumps({"done": state["done"], "role": role, "step_dir": "step", "step": step})
            )
            ray.train.report(named, checkpoint=ray.train.Checkpoint.from_directory(str(holder)))

        train_role(hf, role, samples, frames_of, cfg, out_root / role, resume, report, batch_frames)
        state["done"].append(role)
        if rank == 0:
            from vidra.models.adapters import save_adapter

            save_adapter(hf.model, role, Path(config["out"]) / role)


def fit(
    settings: Settings,
    samples: list[Sample],
    roles: list[str],
    cfg: TrainConfig,
    base: str,
    adapters: dict[str, str],
    paths: dict[str, str],
    out: Path,
    mlflow_run: str | None,
    num_workers: int = 1,
    name: str = "vidra-train",
) -> Path:
    """Train ``roles`` on Ray Train; returns ``out`` holding one adapter directory per role
    and ``progress.jsonl`` (role, step, the checkpoint step a restarted attempt resumed
    from, worker pid, rank 0's step metrics). A worker that dies mid-way is restarted once
    (``FailureConfig(max_failures=1)``) and resumes from the last reported checkpoint."""
    try:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise BackendUnavailable("ray train", "ray", str(exc)) from exc
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    ensure_ray(settings)
    out.mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        _loop,
        train_loop_config={
            "settings": settings.model_dump_json(),
            "train": asdict(cfg),
            "samples": [asdict(s) for s in samples],
            "roles": roles,
            "base": base,
            "adapters": adapters,
            "paths": paths,
            "out": str(out),
            "mlflow_run": mlflow_run,
            "world": num_workers,
        },
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=False),
        run_config=RunConfig(
            name=name,
            storage_path=str((settings.data_dir / "ray_results").absolute()),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=1),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise VidraError(f"training failed: {result.error}") from result.error
    missing = [r for r in roles if not (out / r / "adapter_config.json").is_file()]
    if missing:
        raise VidraError(f"training finished without adapters for {missing}")
    return out

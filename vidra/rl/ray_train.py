"""Run the role trainers on Ray Train: a ``TorchTrainer`` (NCCL on GPU when the settings ask
for CUDA, gloo on CPU) with ``num_workers`` workers, checkpoints reported to Ray Train,
resume from the last one.

Each worker builds its model with the factory the caller hands in (the composition root's
`training_model`: the same code and settings that built the sampling model, so replayed
frames become the same visual tokens), trains each role in turn on its shard
(`vidra.rl.trainer`), and rank 0 logs step metrics to MLflow. A tracking server that stops
answering (each call bounded by ``mlflow.timeout_s`` and ``mlflow.retries``) stops the
training at that step on every rank, and `fit` raises `TrackingUnavailable`: the cycle fails
within that bound of the server's death, not when a long fit ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import BackendUnavailable, TrackingUnavailable, VidraError
from vidra.ray_session import ensure_ray
from vidra.rl.datasets import Sample
from vidra.rl.trainer import TrainConfig

__all__ = ["ModelBuilder", "fit"]

log = logging.getLogger(__name__)

ModelBuilder = Callable[[str, str, dict[str, str]], Any]
"""``(settings JSON, base checkpoint, adapters) -> trainable model`` (an `HFChatModel`)."""

_LOST = "tracking-lost.txt"  # in the output directory: why the workers stopped


class _TrackingLost(Exception):
    """Rank 0 could not log to MLflow: every rank stops at the same step."""


class _MetricLog:
    """Step metrics: every rank's in ``progress.jsonl``; rank 0's in MLflow while it answers."""

    def __init__(
        self, settings: Settings, run_id: str | None, out: Path, world: int, rank: int
    ) -> None:
        self.progress, self.world, self.run_id = out / "progress.jsonl", world, run_id
        self.rank = rank
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.client: Any = None
        self.lost = ""  # why MLflow stopped answering (rank 0)
        if run_id:
            import mlflow

            from vidra.rl.tracking import configure_http

            configure_http(settings)
            mlflow.set_tracking_uri(settings.resolved_tracking_uri())
            self.client = mlflow.tracking.MlflowClient()

    def write(self, role: str, metrics: dict[str, float], resumed: int | None, ckpt: bool) -> None:
        line = {
            "role": role,
            "step": int(metrics["step"]),
            "resumed_from": resumed,
            "pid": os.getpid(),
            "checkpoint": ckpt,
            "world": self.world,
            "rank": self.rank,
            "node": self.node,
            "metrics": metrics,
        }
        with self.progress.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self.client is None:
            return
        try:
            for k, v in metrics.items():
                self.client.log_metric(self.run_id, f"{role}/{k}", float(v), step=line["step"])
        except Exception as exc:  # after its bounded retries: the training stops
            log.warning("MLflow metric logging failed, training stops: %s", exc)
            self.lost = f"MLflow stopped answering during training: {exc}"
            self.client = None

    def stop(self) -> bool:
        """Whether rank 0 lost MLflow, agreed by every rank (one all-reduce a step)."""
        if self.world == 1:
            return bool(self.lost)
        import torch
        import torch.distributed as dist

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([1.0 if self.lost else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _restore(start: Any, name: str) -> tuple[dict[str, Any], Path | None]:
    """The loop state of a Ray Train checkpoint, and its copied step directory."""
    state: dict[str, Any] = {"done": [], "role": None, "step_dir": None}
    if start is None:
        return state, None
    with start.as_directory() as d:
        state = json.loads((Path(d) / "state.json").read_text())
        if not state.get("step_dir"):
            return state, None
        resume_dir = Path(tempfile.mkdtemp(prefix=f"{name}-resume-")) / "resume"
        shutil.copytree(Path(d) / "step", resume_dir)
    return state, resume_dir


def _reporter(
    role: str, state: dict[str, Any], metrics_log: _MetricLog, resumed: int | None, name: str
) -> Callable[[dict[str, float], Path | None], None]:
    import ray.train

    def report(metrics: dict[str, float], ckpt: Path | None) -> None:
        named = {f"{role}/{k}": v for k, v in metrics.items()}
        metrics_log.write(role, metrics, resumed, ckpt is not None)
        if metrics_log.stop():
            raise _TrackingLost(metrics_log.lost or "MLflow stopped answering during training")
        if ckpt is None:
            ray.train.report(named)
            return
        holder = Path(tempfile.mkdtemp(prefix=f"{name}-checkpoint-"))
        shutil.copytree(ckpt, holder / "step")
        step = int(metrics["step"])
        (holder / "state.json").write_text(
            json.dumps({"done": state["done"], "role": role, "step_dir": "step", "step": step})
        )
        try:  # a SYNC upload: the checkpoint is in Ray's storage once report returns
            ray.train.report(named, checkpoint=ray.train.Checkpoint.from_directory(str(holder)))
        finally:
            shutil.rmtree(holder, ignore_errors=True)

    return report


def _loop(config: dict[str, Any]) -> None:
    """Ray Train worker body: build the model, then train each role not yet done."""
    import ray.train
    import torch

    from vidra.models.adapters import save_adapter
    from vidra.rl.replay import batch_step_frames, step_frames
    from vidra.rl.trainer import train_role
    from vidra.video import open_reader

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(1, config["world"])))
    settings = Settings.model_validate_json(config["settings"])
    cfg = TrainConfig(**config["train"])
    samples = [Sample(**s) for s in config["samples"]]
    reader, paths = open_reader(settings), config["paths"]
    hf = config["build"](config["settings"], config["base"], config["adapters"])
    rank = ray.train.get_context().get_world_rank()
    out = Path(config["out"])
    run_id = config["mlflow_run"] if rank == 0 else None
    metrics_log = _MetricLog(settings, run_id, out, config["world"], rank)
    name = config["name"]  # temp dirs carry the run's name: one a killed worker left is traced
    state, resume_dir = _restore(ray.train.get_checkpoint(), name)
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-rank{rank}-"))
    size = cfg.frame_size
    try:
        for role in config["roles"]:
            if role in state["done"]:
                continue
            resume = resume_dir if state.get("role") == role else None
            resumed = state.get("step") if resume is not None else None
            try:
                train_role(
                    hf,
                    role,
                    samples,
                    lambda s: step_frames(s.frames, reader, paths, size),
                    cfg,
                    scratch / role,
                    resume,
                    _reporter(role, state, metrics_log, resumed, name),
                    lambda batch: batch_step_frames([s.frames for s in batch], reader, paths, size),
                )
            except _TrackingLost as exc:  # every rank stops here; the driver fails the cycle
                if rank == 0:
                    (out / _LOST).write_text(str(exc))
                return
            state["done"].append(role)
            if rank == 0:
                save_adapter(hf.model, role, out / role)
    finally:  # the step checkpoints are in Ray's storage; these copies are this rank's
        shutil.rmtree(scratch, ignore_errors=True)
        if resume_dir is not None:
            shutil.rmtree(resume_dir.parent, ignore_errors=True)


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
    build: ModelBuilder | None = None,
) -> Path:
    """Train ``roles`` on Ray Train; returns ``out`` holding one adapter directory per role
    and ``progress.jsonl`` (one line per rank and optimizer step: role, step, rank, the
    checkpoint step a restarted attempt resumed from, worker pid, step metrics). A worker
    that dies mid-way is restarted once (``FailureConfig(max_failures=1)``) and resumes
    from the last reported checkpoint. Raises `TrackingUnavailable` when MLflow stopped
    answering rank 0's step metrics (the workers stopped at that step).

    Args:
        build: the workers' model factory (default: `vidra.runtime.training_model`).
    """
    try:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise BackendUnavailable("ray train", "ray", str(exc)) from exc
    if build is None:
        raise TypeError("fit needs the workers' model factory (vidra.runtime.training_model)")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    ensure_ray(settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / _LOST).unlink(missing_ok=True)
    gpu = settings.model.device.startswith("cuda")
    extra = dict(settings.train.worker_resources)
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
            "build": build,
            "name": name,
        },
        scaling_config=ScalingConfig(
            num_workers=num_workers,
            use_gpu=gpu,
            resources_per_worker={"CPU": 1.0, **extra} if extra else None,
            placement_strategy=settings.train.placement,
        ),
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
    if (out / _LOST).is_file():
        raise TrackingUnavailable((out / _LOST).read_text())
    missing = [r for r in roles if not (out / r / "adapter_config.json").is_file()]
    if missing:
        raise VidraError(f"training finished without adapters for {missing}")
    return out


def sample_paths(store: Any, samples: Sequence[Sample]) -> dict[str, str]:
    """``video id -> path`` for every video the samples' frames refer to."""
    return {v: store.get_video(v).path for v in {v for s in samples for v, _ in s.frames}}

"""The retraining cycle: dataset from the store -> Ray Train -> held-out evaluation ->
register one MLflow model version per role -> move ``champion`` only when the gate passes.

The training run, its lineage (episodes) and the versions are also recorded in SQL.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.rl.datasets import Dataset, RewardSpec, build_dpo, build_grpo, build_sft
from vidra.rl.trainer import TrainConfig
from vidra.storage import TrajectoryStore

__all__ = ["RetrainResult", "evaluate", "retrain"]

log = logging.getLogger(__name__)
ROLES = ("planner", "selector", "reasoner", "critic")


@dataclass
class RetrainResult:
    """What a cycle did, in terms a user can read."""

    algorithm: str
    roles: list[str]
    mlflow_run_id: str
    training_run_id: str
    samples: int
    episodes: int
    metrics: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    promoted: bool = False
    decision: str = ""
    eval_report: dict[str, dict[str, Any]] = field(default_factory=dict)  # full held-out metrics

    def summary(self) -> str:
        ev = ", ".join(f"{k} {v:.3f}" for k, v in self.evaluation.items())
        vs = ", ".join(f"vidra-{r} v{v}" for r, v in self.versions.items())
        return (
            f"{self.algorithm} on {self.roles}: {self.samples} samples from {self.episodes} "
            f"episodes; eval {ev}; registered {vs}; "
            f"{'PROMOTED to champion' if self.promoted else 'not promoted'} ({self.decision}); "
            f"MLflow run {self.mlflow_run_id}"
        )


def _dataset(
    store: TrajectoryStore,
    algo: str,
    roles: Sequence[str],
    since_run: str | None,
    spec: RewardSpec,
    min_reward: float = 1.0,
) -> Dataset:
    if algo == "grpo":
        return build_grpo(store, spec, roles, since_run=since_run)
    if algo == "dpo":
        return build_dpo(store, spec, roles, since_run=since_run)
    if algo == "sft":
        return build_sft(store, spec, roles, since_run=since_run, threshold=min_reward)
    raise InvalidInput(f"unknown algorithm {algo!r}; use grpo, dpo or sft")


def evaluate(
    settings: Settings, adapters: dict[str, str], n: int, seed: int = 12345
) -> dict[str, Any]:
    """Held-out metrics (`vidra.rl.evaluation.evaluate`) on ``n`` questions of a 3-minute
    synthetic world with the given adapters."""
    from vidra.rl.evaluation import evaluate as run_eval
    from vidra.rl.evaluation import synthetic_worlds

    worlds = synthetic_worlds(settings.data_dir / "eval", [seed], 180, per_kind=n // 5 + 1)
    return run_eval(settings, worlds, adapters, limit=n)


def retrain(
    settings: Settings,
    algo: str = "grpo",
    roles: Sequence[str] | None = None,
    since_run: str | None = "last",
    config: TrainConfig | None = None,
    spec: RewardSpec | None = None,
    num_workers: int | None = None,
    min_reward: float = 1.0,
) -> RetrainResult:
    """Run one retraining cycle; raises `InvalidInput` saying why when there is nothing to learn."""
    from vidra.models import resolve_model_path
    from vidra.rl.ray_train import fit
    from vidra.rl.tracking import Tracker, champion_adapters, registry_name

    roles = list(roles or ROLES)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles {unknown}; choose from {list(ROLES)}")
    spec = spec or RewardSpec()
    store = TrajectoryStore(settings=settings)
    if since_run == "last":
        runs = store.training_runs()
        since_run = runs[-1].id if runs else None
    ds = _dataset(store, algo, roles, since_run, spec, min_reward)
    if not ds.samples:
        raise InvalidInput(ds.empty_reason or "the dataset is empty")
    t = settings.train
    cfg = config or TrainConfig(
        algorithm=algo,
        lr=t.lr,
        batch_size=t.batch_size,
        epochs=t.epochs,
        checkpoint_every=t.checkpoint_every,
        frame_size=settings.agents.frame_size,
        temperature=settings.agents.rollout_temperature,
    )
    tracker = Tracker(settings, f"{algo}-{time.strftime('%Y%m%d-%H%M%S')}")
    base = resolve_model_path(settings.model.path)
    start = dict(settings.model.adapters) or champion_adapters(settings, roles)
    run = store.create_training_run(
        algo, {"train": cfg.__dict__, "roles": roles, "reward_spec": spec.weights}, ds.episode_ids
    )
    tracker.params(
        {
            "algorithm": algo,
            "lr": cfg.lr,
            "beta": cfg.beta,
            "dpo_beta": cfg.dpo_beta,
            "roles": ",".join(roles),
            "reward_spec": spec.to_json(),
            "dataset_samples": len(ds.samples),
            "dataset_episodes": len(ds.episode_ids),
            "base_model": base,
            "seed": cfg.seed,
            "num_workers": num_workers or t.num_workers,
            "G": ds.filters.get("min_rollouts", ""),
        }
    )
    out = settings.data_dir / "adapters" / run.id
    try:
        paths = {v: store.get_video(v).path for v in {v for s in ds.samples for v, _ in s.frames}}
        fit(
            settings,
            ds.samples,
            roles,
            cfg,
            base,
            start,
            paths,
            out,
            tracker.run_id,
            num_workers or t.num_workers,
            name=f"vidra-{run.id}",
        )
        for role in roles:
            tracker.artifacts(out / role, f"adapters/{role}")
        manifest = Path(tempfile.mkdtemp()) / "dataset.json"
        manifest.write_text(json.dumps({**ds.manifest(), "episode_ids": ds.episode_ids}))
        tracker.artifacts(manifest.parent, "dataset")
        candidate = {**start, **{r: str(out / r) for r in roles}}
        cand_report = evaluate(settings, candidate, t.eval_questions)
        champ_report = evaluate(settings, start, t.eval_questions)
        cand_acc, champ_acc = cand_report["accuracy"], champ_report["accuracy"]
        tracker.metrics(
            {"eval/candidate_accuracy": cand_acc, "eval/champion_accuracy": champ_acc}, step=0
        )
        report = Path(tempfile.mkdtemp()) / "eval.json"
        report.write_text(json.dumps({"candidate": cand_report, "champion": champ_report}))
        tracker.artifacts(report.parent, "eval")
        promoted = cand_acc >= champ_acc - t.gate_tolerance
        decision = (
            f"held-out accuracy {cand_acc:.3f} vs champion {champ_acc:.3f} "
            f"(tolerance {t.gate_tolerance})"
        )
        versions = {}
        for role in roles:
            versions[role] = tracker.register(role)
            store.record_model_version(
                role, registry_name(role), versions[role], tracker.run_id, {"accuracy": cand_acc}
            )
            if promoted:
                tracker.promote(role, versions[role])
                store.set_alias(registry_name(role), versions[role], "champion")
        store.finish_training_run(
            run.id,
            "done",
            {"eval_candidate": cand_acc, "eval_champion": champ_acc, "promoted": promoted},
            tracker.run_id,
        )
        tracker.end()
    except BaseException:
        store.finish_training_run(run.id, "failed", {}, tracker.run_id)
        tracker.end("FAILED")
        raise
    finally:
        store.close()
    return RetrainResult(
        algo,
        roles,
        tracker.run_id,
        run.id,
        len(ds.samples),
        len(ds.episode_ids),
        {},
        {"candidate": cand_acc, "champion": champ_acc},
        versions,
        promoted,
        decision,
        {"candidate": cand_report, "champion": champ_report},
    )


def online(
    settings: Settings,
    iterations: int,
    questions: int = 4,
    rollouts: int = 4,
    roles: Sequence[str] | None = None,
    seed: int = 0,
) -> list[RetrainResult]:
    """Online GRPO: each iteration collects fresh G-rollout jobs on new synthetic-world
    questions with the current champions, then runs a GRPO cycle on just those episodes."""
    from vidra.api import Client
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    if iterations <= 0 or rollouts < 2:
        raise InvalidInput("online GRPO needs iterations >= 1 and rollouts >= 2")
    results = []
    for it in range(iterations):
        world = make_world(
            WorldSpec(duration=300, fps=4, width=160, height=90, seed=seed * 1000 + it)
        )
        video = render_world(world, settings.data_dir / "online" / f"it{it}" / "video.mp4")
        with Client(settings) as client:  # a new client loads the latest champions
            jobs = [
                client.submit(video, q.text, options=q.options, answer=q.answer, rollouts=rollouts)
                for q in generate_questions(
                    world, per_kind=max(1, questions // 5 + 1), seed=seed + it
                )[:questions]
            ]
            for job in jobs:
                job.result()
        results.append(retrain(settings, "grpo", roles, since_run="last"))
        log.info("online iteration %d: %s", it, results[-1].summary())
    return results

"""The retraining cycle: dataset from the store -> Ray Train -> held-out gate -> register one
MLflow model version per role -> move every trained role's ``champion`` together, or none.

Failure rules: a failed or interrupted cycle promotes nothing and is marked failed in the
store (and in MLflow, now or when it answers again); promotion moves MLflow's aliases first
and then the store's champions in one transaction (the store is what clients load), and a
restart reconciles what a failure left half done. MLflow calls are time-bounded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.agents.roles import EPISODE_ROLES, check_roles
from vidra.config import Settings, TrainSettings
from vidra.errors import InvalidInput, TrackingUnavailable
from vidra.models.protocol import SamplingParams
from vidra.rl.datasets import Dataset, RewardSpec, build_dpo, build_grpo, build_sft
from vidra.rl.trainer import TrainConfig
from vidra.storage import TrainingRunRecord, TrajectoryStore

__all__ = [
    "Hook",
    "RetrainResult",
    "allowed_versions",
    "decide",
    "gate_report",
    "resolve_since",
    "retrain",
    "step_line",
]

log = logging.getLogger(__name__)
Hook = Callable[[str], None]
"""Called with the name of each stage (``before_fit``, ``before_alias:<role>``, ...): a place
for tests to inject a fault at a known point; no behaviour depends on it."""
StepCallback = Callable[[dict[str, Any]], None]
"""Called with each training step's progress line (see `vidra.rl.ray_train.fit`)."""


def step_line(row: dict[str, Any]) -> str:
    """One training step as a line a user can follow: role, step, loss and reward; or the
    gate's progress (``{"gate": arm, "done": k, "total": n}``)."""
    if "gate" in row:
        return f"  gate {row['gate']}: {row['done']}/{row['total']} questions"
    m = row.get("metrics", {})
    parts = [f"train {row.get('role', '?')} step {row.get('step', '?')}"]
    for key in ("loss", "reward_mean", "grad_norm"):
        if isinstance(m.get(key), int | float):
            parts.append(f"{key} {m[key]:.4f}")
    return "  " + ", ".join(parts)


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
    eval_report: dict[str, dict[str, Any]] = field(default_factory=dict)  # the gate's reports

    def summary(self) -> str:
        ev = ", ".join(f"{k} {self.evaluation[k]:.3f}" for k in ("candidate", "champion")
                       if k in self.evaluation)  # fmt: skip
        vs = ", ".join(f"vidra-{r} v{v}" for r, v in self.versions.items())
        return (
            f"{self.algorithm} on {self.roles}: {self.samples} samples from {self.episodes} "
            f"episodes; eval {ev}; registered {vs}; "
            f"{'PROMOTED to champion' if self.promoted else 'not promoted'} ({self.decision}); "
            f"MLflow run {self.mlflow_run_id}"
        )


def reward_spec(settings: Settings) -> RewardSpec:
    """The reward spec of a cycle: the default weights with ``train.reward_weights`` over them,
    episode components (`REWARDS`) and step-level ones (`STEP_REWARDS`) alike (a weight of 0
    leaves a component out)."""
    from vidra.rl.rewards import DEFAULT_STEP_WEIGHTS, DEFAULT_WEIGHTS, REWARDS, STEP_REWARDS

    given = settings.train.reward_weights
    unknown = sorted(set(given) - set(REWARDS) - set(STEP_REWARDS))
    if unknown:
        raise InvalidInput(f"train.reward_weights names {unknown}: not reward components; "
                           f"use some of {sorted([*REWARDS, *STEP_REWARDS])}")  # fmt: skip
    weights = {**DEFAULT_WEIGHTS, **{k: w for k, w in given.items() if k in REWARDS}}
    steps = {**DEFAULT_STEP_WEIGHTS, **{k: w for k, w in given.items() if k in STEP_REWARDS}}
    return RewardSpec(weights={k: w for k, w in weights.items() if w != 0},
                      step_weights={k: w for k, w in steps.items() if w != 0})  # fmt: skip


def resolve_since(store: TrajectoryStore, since_run: str | None) -> str | None:
    """``"last"``: the last successful run (failed runs never hide data); ``"all"``/None:
    everything; else a run id, which must exist."""
    if since_run in (None, "all"):
        return None
    if since_run == "last":
        run = store.last_successful_run()
        return run.id if run else None
    store.get_training_run(since_run)
    return since_run


def allowed_versions(
    store: TrajectoryStore, tracking_uri: str, roles: Sequence[str], staleness: int
) -> dict[str, set[str]]:
    """Per role, the adapter versions of its last ``staleness + 1`` champions (and the base
    model, while there were fewer): what a step may have been sampled with."""
    promoted = [
        r for r in store.training_runs("done") if (r.promotion or {}).get("state") == "done"
    ]
    versions = {
        (v.registry_name, v.version): v for v in store.model_versions(tracking_uri=tracking_uri)
    }
    out: dict[str, set[str]] = {}
    for role in roles:
        chain = [
            versions.get((f"vidra-{role}", r.promotion["versions"][role]))  # type: ignore[index]
            for r in promoted
            if role in ((r.promotion or {}).get("versions") or {})
        ]
        hashes = [v.metrics.get("adapter_version") for v in chain if v is not None]
        kept = [h for h in hashes if h][-(staleness + 1) :]
        if len(kept) < staleness + 1:
            kept.append("base")
        out[role] = set(kept)
    return out


def _dataset(
    store: TrajectoryStore,
    algo: str,
    roles: Sequence[str],
    since_run: str | None,
    spec: RewardSpec,
    min_reward: float,
    tr: TrainSettings,
    allowed: dict[str, set[str]] | None = None,
    fuse: Callable[[str], list[int]] | None = None,
) -> Dataset:
    if algo == "grpo":
        return build_grpo(store, spec, roles, since_run=since_run, allowed_versions=allowed,
                          normalise_std=tr.normalise_std)  # fmt: skip
    if algo == "dpo":
        return build_dpo(store, spec, roles, since_run=since_run)
    if algo == "sft":
        return build_sft(store, spec, roles, since_run=since_run, threshold=min_reward,
                         best_of_group=tr.sft_best_of_group, fuse_find=fuse,
                         tools=tr.sft_tools or None)  # fmt: skip
    raise InvalidInput(f"unknown algorithm {algo!r}; use grpo, dpo, sft or sft+grpo")


def _find_encoder(settings: Settings) -> Callable[[str], list[int]]:
    """``train.sft_fuse_find``'s reply encoding: the base model's tokenizer, no special tokens."""
    from transformers import AutoTokenizer

    from vidra.models import resolve_model_path

    if not settings.agents.find_tool:
        raise InvalidInput("train.sft_fuse_find teaches the selector find, which it is offered "
                           "only with agents.find_tool: set VIDRA_AGENTS__FIND_TOOL=true or "
                           "VIDRA_TRAIN__SFT_FUSE_FIND=false")  # fmt: skip
    path = resolve_model_path(settings.model.path)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=settings.model.trust_remote_code)
    return lambda text: list(tok.encode(text, add_special_tokens=False))


def _resampled(
    settings: Settings, store: TrajectoryStore, grpo: Dataset, targets: Sequence[str],
    since: str | None,
) -> Dataset:  # fmt: skip
    """``grpo`` with the reasoner's and the critic's episode-level samples replaced by
    per-step groups: ``train.resample`` fresh replies to each of their recorded prompts,
    sampled by the policy the training starts from (`vidra.rl.resample`)."""
    import torch

    from vidra.models import resolve_model_path
    from vidra.rl.replay import batch_step_frames
    from vidra.rl.resample import RESAMPLED_REWARDS, RESAMPLED_ROLES, recorded_prompts, resample
    from vidra.rl.tracking import champion_adapters
    from vidra.runtime import training_model
    from vidra.video import open_reader

    g = settings.train.resample
    if g < 2:
        raise InvalidInput(f"train.resample={g}: comparing replies needs >= 2 (0 turns it off)")
    roles = [r for r in RESAMPLED_ROLES if r in targets]
    if not roles:
        return grpo
    t0 = time.perf_counter()
    start = dict(settings.model.adapters) or champion_adapters(settings, store, roles)
    model = training_model(settings.model_dump_json(), resolve_model_path(settings.model.path),
                           {r: p for r, p in start.items() if r in roles})  # fmt: skip
    reader, size = open_reader(settings), settings.agents.frame_size
    a = settings.agents
    sampling = SamplingParams(temperature=a.rollout_temperature, max_tokens=a.max_tokens)
    kept = [s for s in grpo.samples if s.role not in roles]
    out = Dataset("grpo", grpo.spec, kept, list(dict.fromkeys(s.episode_id for s in kept)),
                  dict(grpo.counts), {**grpo.filters, "resample": g},
                  {r: RESAMPLED_REWARDS[r] for r in roles})  # fmt: skip
    torch.manual_seed(settings.train.seed)  # the training seed also draws the replies
    for role in roles:
        prompts, counts = recorded_prompts(store, role, since)
        videos = {v for p in prompts for v, _ in p.step.frames}
        paths = {v: store.get_video(v).path for v in videos}
        fresh = resample(
            model, prompts, functools.partial(batch_step_frames, reader=reader, paths=paths,
                                              size=size),
            sampling,
            g, role if role in model.adapters else None, settings.train.normalise_std,
            constrain=a.answer_mode == "options", role=role, threshold=a.critic_threshold,
        )  # fmt: skip
        out.samples += fresh.samples
        out.episode_ids = list(dict.fromkeys(out.episode_ids + fresh.episode_ids))
        got = {**counts, **fresh.counts}
        out.counts.update({f"resample_{role}_{k}": v for k, v in got.items()})
    log.info("resampled %s: %s in %.0f s", roles, out.counts, time.perf_counter() - t0)
    return out


def gate_report(
    settings: Settings,
    adapters: dict[str, str],
    store_url: str,
    on_step: StepCallback | None = None,
    arm: str = "candidate",
) -> dict[str, Any]:
    """The gate task's report for ``adapters``, answered in the scratch store ``store_url``
    (gate traffic never feeds the next cycle's training data); ``on_step`` hears every
    tenth question and the last as ``{"gate": arm, "done": k, "total": n}``."""
    from vidra.pipelines.evaluate import EvalSpec
    from vidra.pipelines.evaluate import evaluate as run_eval

    t = settings.train
    s = settings.model_copy(deep=True)
    s.database_url = store_url
    s.mlflow.use_champions = False
    # the scratch store is a SQLite file here: its questions are answered in this process,
    # also when cycles run on a Ray cluster (whose workers could not reach the file)
    s.runner.executor, s.runner.ray_address = "local", None
    spec = EvalSpec(
        task=t.gate_task, annotations=t.gate_annotations,
        videos=t.gate_videos or settings.data_dir / "gate", limit=t.eval_questions,
        options=dict(t.gate_options), mlflow=False,
    )  # fmt: skip

    def progress(done: int, total: int, result: dict[str, Any] | None) -> None:
        if on_step is not None and result is not None and (done % 10 == 0 or done == total):
            with contextlib.suppress(Exception):  # a display never fails the gate
                on_step({"gate": arm, "done": done, "total": total})

    return run_eval(s, spec, adapters=dict(adapters), progress=progress)


def decide(
    settings: Settings, samples: int, cand: dict[str, Any], champ: dict[str, Any]
) -> tuple[bool, str, dict[str, Any]]:
    """The promotion decision from the two gate reports, on their shared questions: promote
    when the candidate is significantly better (the paired 95% interval of the difference
    lies above 0); a tie only with ``promote_ties`` and a lower bound >= -tolerance; never
    when it was trained on fewer than ``min_samples`` samples. The line says why."""
    from vidra.evals.metrics import paired_from_maps

    t = settings.train

    def scores(r: dict[str, Any]) -> dict[str, float]:
        return {x["qid"]: float(x["correct"]) for x in r["per_question"] if "correct" in x}

    d = paired_from_maps(scores(cand), scores(champ))
    lo, hi = d.ci95
    stats = {"n": d.n, "candidate": d.mean_a, "champion": d.mean_b, "diff": d.diff,
             "ci95": [lo, hi], "p_value": d.p_value}  # fmt: skip
    head = (
        f"gate {t.gate_task} on {d.n} questions: candidate {d.mean_a:.3f} vs champion "
        f"{d.mean_b:.3f}, diff {d.diff:+.3f} [95% CI {lo:+.3f}, {hi:+.3f}], p={d.p_value:.3f}"
    )
    if samples < t.min_samples:
        return False, f"{head}; not promoted: trained on {samples} samples < min_samples", stats
    if d.n and lo > 0:
        return True, f"{head}; promoted: better beyond noise", stats
    if d.n and hi >= 0 and lo >= -t.gate_tolerance and t.promote_ties:
        return True, f"{head}; promoted: a tie within noise (promote_ties)", stats
    if d.n and hi >= 0:
        why = "promote_ties is off" if not t.promote_ties else f"lower bound < -{t.gate_tolerance}"
        return False, f"{head}; not promoted: a tie within noise ({why})", stats
    return False, f"{head}; not promoted: worse", stats


def _trained_roles(datasets: Sequence[Dataset], asked: list[str] | None) -> list[str]:
    """The roles asked for (all must have samples), or every episode role that has some."""
    have = {s.role for ds in datasets for s in ds.samples}
    if asked is None:
        return [r for r in EPISODE_ROLES if r in have]
    missing = [r for r in asked if r not in have]
    if missing:
        algos = "+".join(ds.algorithm for ds in datasets)
        raise InvalidInput(
            f"no {algos} samples of role(s) {missing} in the dataset "
            f"(it has {sorted(have)}); leave them out of --roles, or record episodes with them"
        )
    return asked


def _config(settings: Settings, algo: str, config: TrainConfig | None) -> TrainConfig:
    t = settings.train
    return config or TrainConfig(
        algorithm=algo,
        lr=t.lr,
        batch_size=t.batch_size,
        epochs=t.epochs,
        seed=t.seed,
        loss_tokens=t.loss_tokens,
        lora_targets=t.lora_targets,
        checkpoint_every=t.checkpoint_every,
        frame_size=settings.agents.frame_size,
        temperature=settings.agents.rollout_temperature,
    )


@dataclass
class _Cycle:
    """One cycle's parts, so each stage is its own short function."""

    settings: Settings
    store: TrajectoryStore
    tracker: Any
    run: TrainingRunRecord
    roles: list[str]
    start: dict[str, str]
    hook: Hook
    on_step: StepCallback | None = None


def _params(
    c: _Cycle, algo: str, stages: Sequence[tuple[Dataset, TrainConfig]], base: str, workers: int
) -> None:
    ds, cfg = stages[-1]
    c.tracker.params(
        {
            "algorithm": algo, "lr": cfg.lr, "beta": cfg.beta, "dpo_beta": cfg.dpo_beta,
            "roles": ",".join(c.roles), "reward_spec": json.dumps(ds.rewards(), sort_keys=True),
            "dataset_samples": sum(len(d.samples) for d, _ in stages),
            "dataset_episodes": len({e for d, _ in stages for e in d.episode_ids}),
            "stages": "+".join(d.algorithm for d, _ in stages),
            "base_model": base, "seed": cfg.seed, "num_workers": workers,
            "G": ds.filters.get("min_rollouts", ""), "training_run": c.run.id,
            "normalise_std": c.settings.train.normalise_std, "loss_tokens": cfg.loss_tokens,
            "resample": c.settings.train.resample, "lora_targets": cfg.lora_targets,
            **({"sft_min_reward": stages[0][0].filters["threshold"],
                "sft_best_of_group": stages[0][0].filters["best_of_group"],
                "sft_fuse_find": stages[0][0].filters["fuse_find"],
                "sft_tools": ",".join(stages[0][0].filters["tools"] or [])}
               if stages[0][0].algorithm == "sft" else {}),
        }
    )  # fmt: skip


def _train(
    c: _Cycle, ds: Dataset, cfg: TrainConfig, base: str, workers: int,
    start: dict[str, str], stage: int, last: bool,
) -> dict[str, str]:  # fmt: skip
    """Fit one stage on Ray Train from ``start``; log the dataset lineage and, after the
    last stage, the adapters. The candidate adapters."""
    from vidra.rl.ray_train import fit, sample_paths
    from vidra.runtime import training_model

    roles = [r for r in c.roles if any(s.role == r for s in ds.samples)]
    out = c.settings.data_dir / "adapters" / c.run.id / f"{stage}-{ds.algorithm}"
    c.hook("before_fit")
    paths = sample_paths(c.store, ds.samples)
    with _following(out / "progress.jsonl", c.on_step):
        fit(c.settings, ds.samples, roles, cfg, base, start, paths, out, c.tracker.run_id,
            workers, name=f"vidra-{c.run.id}-{stage}", build=training_model)  # fmt: skip
    c.hook("after_fit")
    with tempfile.TemporaryDirectory(prefix=f"vidra-{c.run.id}-dataset-") as folder:
        manifest = Path(folder) / f"dataset-{stage}-{ds.algorithm}.json"
        manifest.write_text(json.dumps({**ds.manifest(), "episode_ids": ds.episode_ids}))
        c.tracker.artifacts(manifest.parent, "dataset")
    candidate = {**start, **{r: str(out / r) for r in roles}}
    if last:
        for role in c.roles:
            c.tracker.artifacts(Path(candidate[role]), f"adapters/{role}")
    return candidate


@contextlib.contextmanager
def _following(path: Path, on_step: StepCallback | None) -> Iterator[None]:
    """While the body runs, hand each new rank-0 line of the workers' ``progress.jsonl``
    (role, step, metrics such as loss) to ``on_step``."""
    if on_step is None:
        yield
        return
    done = threading.Event()

    def follow() -> None:
        seen = 0
        while True:
            finished = done.is_set()
            lines = path.read_text().splitlines() if path.is_file() else []
            for line in lines[seen:]:
                try:
                    row = json.loads(line)
                except ValueError:  # a line being written
                    break
                seen += 1
                if row.get("rank", 0) == 0:
                    with contextlib.suppress(Exception):  # a display never fails training
                        on_step(row)
            if finished:
                return
            done.wait(0.5)

    worker = threading.Thread(target=follow, name="vidra-train-progress", daemon=True)
    worker.start()
    try:
        yield
    finally:
        done.set()
        worker.join(timeout=5)


def _gate(c: _Cycle, candidate: dict[str, str], samples: int) -> tuple[bool, str, dict[str, Any]]:
    """Candidate vs champion on the gate task (paired, same questions); the decision."""
    with tempfile.TemporaryDirectory(prefix=f"vidra-{c.run.id}-gate-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'gate.db'}"
        cand = gate_report(c.settings, candidate, url, c.on_step, "candidate")
        champ = gate_report(c.settings, c.start, url, c.on_step, "champion")
    promoted, decision, stats = decide(c.settings, samples, cand, champ)
    c.tracker.metrics(
        {"gate/candidate": cand["accuracy"], "gate/champion": champ["accuracy"],
         "gate/diff": stats["diff"], "gate/ci95_low": stats["ci95"][0],
         "gate/ci95_high": stats["ci95"][1]},
        step=0,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"vidra-{c.run.id}-gate-") as folder:
        report = Path(folder) / "gate.json"
        report.write_text(json.dumps({"candidate": cand, "champion": champ, "paired": stats},
                                     default=str))  # fmt: skip
        c.tracker.artifacts(report.parent, "gate")
    if promoted and c.settings.train.promote == "never":
        promoted, decision = False, f"{decision}; train.promote=never: versions registered only"
    return promoted, decision, {"candidate": cand, "champion": champ, "paired": stats}


def _register(c: _Cycle, accuracy: float, candidate: dict[str, str]) -> dict[str, str]:
    """One registry version per trained role, mirrored in the store (no alias yet), with the
    adapter version its steps will record (for the staleness bound)."""
    from vidra.models.adapters import adapter_file_version
    from vidra.rl.tracking import registry_name

    versions: dict[str, str] = {}
    for role in c.roles:
        c.hook(f"before_register:{role}")
        versions[role] = c.tracker.register(role)
        metrics = {"accuracy": accuracy,
                   "adapter_version": adapter_file_version(candidate[role], role)}  # fmt: skip
        c.store.record_model_version(
            role, registry_name(role), versions[role], c.tracker.run_id, metrics,
            tracking_uri=c.tracker.uri, source=c.tracker.source(role),
        )  # fmt: skip
    return versions


def _promote(c: _Cycle, versions: dict[str, str]) -> None:
    """MLflow's aliases for every role, then the store's champions in one transaction. A
    failure on the way puts back the aliases already moved (or leaves that to `reconcile`)."""
    from vidra.rl.tracking import registry_name

    previous = {r: v.version for r, v in c.store.champions(c.tracker.uri).items()}
    c.store.set_promotion(c.run.id, "pending", versions=versions, previous=previous)
    moved: list[str] = []
    try:
        for role, version in versions.items():
            c.hook(f"before_alias:{role}")
            c.tracker.set_alias(role, version)
            moved.append(role)
    except BaseException:
        _restore_aliases(c, moved, previous)
        raise
    c.hook("before_store_promotion")
    c.store.promote(
        c.run.id, {r: (registry_name(r), v) for r, v in versions.items()}, c.tracker.uri
    )


def _restore_aliases(c: _Cycle, moved: list[str], previous: dict[str, str]) -> None:
    from vidra.rl.tracking import CHAMPION, registry_name

    try:
        for role in moved:
            if role in previous:
                c.tracker.set_alias(role, previous[role])
            else:
                c.tracker._call(
                    lambda r=role: c.tracker.client.delete_registered_model_alias(
                        registry_name(r), CHAMPION
                    )
                )
        c.store.set_promotion(c.run.id, "rolled_back")
    except Exception as exc:  # MLflow dead: `reconcile` finishes this when it answers
        log.warning("could not restore champion aliases now (%s); reconcile will", exc)


def _fail(c: _Cycle, exc: BaseException) -> None:
    """Mark the run failed in the store, and in MLflow when it answers (else later)."""
    try:
        c.store.finish_training_run(
            c.run.id, "failed", {"error": str(exc)[:1000]}, c.tracker.run_id
        )
    except Exception:
        log.exception("could not mark training run %s failed", c.run.id)
    try:
        c.tracker.end("FAILED")
    except Exception as again:
        log.warning("MLflow run %s stays open until MLflow answers: %s", c.tracker.run_id, again)
        state = (c.store.get_training_run(c.run.id).promotion or {}).get("state", "none")
        c.store.set_promotion(c.run.id, state, mlflow_end=True)


def retrain(
    settings: Settings,
    algo: str = "grpo",
    roles: Sequence[str] | None = None,
    since_run: str | None = "last",
    config: TrainConfig | None = None,
    spec: RewardSpec | None = None,
    num_workers: int | None = None,
    min_reward: float | None = None,
    hook: Hook | None = None,
    max_staleness: int | None = None,
    on_step: StepCallback | None = None,
) -> RetrainResult:
    """Run one retraining cycle; raises `InvalidInput` saying why when there is nothing to learn.

    Args:
        since_run: ``"last"`` (after the last successful run), ``"all"``/None, or a run id.
        hook: test-only fault-injection point (see `Hook`).
        min_reward: SFT's rejection-sampling threshold (None: ``train.sft_min_reward``).
        max_staleness: GRPO learns only from steps sampled at most this many champion
            versions behind (None: any).
        on_step: called with each training step's progress line (role, step, metrics).
    """
    from vidra.models import resolve_model_path
    from vidra.rl.tracking import Tracker, reconcile

    asked = check_roles(list(roles)) if roles else None
    spec = spec or reward_spec(settings)
    workers = num_workers or settings.train.num_workers
    with TrajectoryStore(settings=settings) as store:
        since = resolve_since(store, since_run)
        targets = asked or list(EPISODE_ROLES)
        allowed = None
        if max_staleness is not None:
            allowed = allowed_versions(store, settings.resolved_tracking_uri(), targets,
                                       max_staleness)  # fmt: skip
        algos = ["sft", "grpo"] if algo == "sft+grpo" else [algo]
        tr = settings.train
        floor = tr.sft_min_reward if min_reward is None else min_reward
        fuse = _find_encoder(settings) if tr.sft_fuse_find and "sft" in algos else None
        built = [
            _dataset(store, a, targets, since, spec, floor, tr, allowed if a == "grpo" else None,
                     fuse)
            for a in algos
        ]  # fmt: skip
        if settings.train.resample and algos[-1] == "grpo":
            built[-1] = _resampled(settings, store, built[-1], targets, since)
        if not any(d.samples for d in built):
            raise InvalidInput("; ".join(d.empty_reason or "empty" for d in built))
        stages = [(d, _config(settings, d.algorithm, config)) for d in built if d.samples]
        roles = _trained_roles([d for d, _ in stages], asked)
        lineage = list(dict.fromkeys(e for d, _ in stages for e in d.episode_ids))
        cfg = stages[-1][1]
        reconcile(settings, store)
        tracker = Tracker(settings, f"{algo}-{time.strftime('%Y%m%d-%H%M%S')}")
        base = resolve_model_path(settings.model.path)
        from vidra.rl.tracking import champion_adapters

        start = dict(settings.model.adapters) or champion_adapters(settings, store, roles)
        run = store.create_training_run(
            algo, {"train": cfg.__dict__, "roles": roles,
                   "reward_spec": built[-1].rewards(),
                   "advantages": "std" if settings.train.normalise_std else "centred",
                   "resample": settings.train.resample},
            lineage,
        )  # fmt: skip
        c = _Cycle(settings, store, tracker, run, roles, start, hook or (lambda stage: None),
                   on_step)  # fmt: skip
        try:
            return _run(c, algo, stages, base, workers)
        except BaseException as exc:
            _fail(c, exc)
            if isinstance(exc, TrackingUnavailable):
                raise TrackingUnavailable(f"{exc} (training run {run.id} marked failed)") from exc
            raise


def _run(
    c: _Cycle, algo: str, stages: Sequence[tuple[Dataset, TrainConfig]], base: str, workers: int
) -> RetrainResult:
    _params(c, algo, stages, base, workers)
    candidate = dict(c.start)
    for k, (ds, cfg) in enumerate(stages):  # sft+grpo: GRPO starts from the SFT adapters
        candidate = _train(c, ds, cfg, base, workers, candidate, k, k == len(stages) - 1)
    samples = sum(len(d.samples) for d, _ in stages)
    episodes = len({e for d, _ in stages for e in d.episode_ids})
    promoted, decision, report = _gate(c, candidate, samples)
    acc = report["candidate"]["accuracy"]
    versions = _register(c, acc, candidate)
    if promoted:
        _promote(c, versions)
    paired = report["paired"]
    c.store.finish_training_run(
        c.run.id,
        "done",
        {"gate_candidate": acc, "gate_champion": report["champion"]["accuracy"],
         "gate_diff": paired["diff"], "gate_ci95": paired["ci95"], "promoted": promoted,
         "decision": decision},
        c.tracker.run_id,
    )  # fmt: skip
    c.tracker.end()
    evaluation = {"candidate": acc, "champion": report["champion"]["accuracy"],
                  "diff": paired["diff"], "ci95_low": paired["ci95"][0],
                  "ci95_high": paired["ci95"][1]}  # fmt: skip
    return RetrainResult(
        algo, c.roles, c.tracker.run_id, c.run.id, samples, episodes, {},
        evaluation, versions, promoted, decision, report,
    )  # fmt: skip

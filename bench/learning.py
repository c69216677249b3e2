"""The learning loop, measured with statistical power: vidra-tiny (SFT) against the same
agents after online GRPO cycles, on >= 500 held-out questions answered in the same run, with
95% paired-bootstrap intervals for every row against the SFT row; an ablation of which role's
training the gain comes from; and how often the promotion gate and the benchmark disagree.

Benchmark (held out: world seeds vidra-tiny and the online cycles never saw): the `synthetic`
task on ``--short-worlds`` 4-minute worlds (all five question kinds) plus ``--long-worlds``
30-minute worlds with ten needles each, run through the evaluation harness (`Client.evaluate`,
every answer a trajectory in SQL) with the ``search`` strategy vidra-tiny was trained for.

Rows:
- ``SFT``: the shipped vidra-tiny;
- ``after k cycles``: the champions after k online GRPO cycles (each: fresh G=4 rollouts on
  training worlds, GRPO with per-step evidence credit on Ray Train, tracked in MLflow,
  promoted only through the gate on held-out synthetic worlds of other seeds);
- ``<role> only`` / ``all roles`` (1 cycle, shared rollouts): the ablation, every row trained
  from one collection of cycle 1's questions (see `_ablation`);
- ``SFT again``: the SFT agents evaluated afresh at the end, the run-to-run noise floor
  (left out with ``--no-noise-floor``).

Usage: ``python bench/learning.py --home DIR [--cycles 3] [--no-ablation] [--promote-ties]
[--no-noise-floor] [--epochs 1] [--ablation-rows ROW ...] [--train-seeds 0 1 2]
[--ablation-gate-questions 40] [--collections 1] [--collection-rollouts 4]
[--out bench/results/learning.json]``; ``--cycles 0``: the ablation alone (reusing ``DIR``'s
cached SFT row when the same ``DIR`` ran before, and its ablation collection if it has one).

The benchmark's answers are recorded in the same store as the cycles' rollouts; training
never reads them (evaluation runs' episodes are left out of every dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit, eval_row, header, paired_rows, seed_means

ROLES = ("planner", "selector", "reasoner", "critic")


def _settings(home: Path, gate_questions: int, promote_ties: bool = False, epochs: int = 1) -> Any:
    from vidra.config import Settings
    from vidra.models import resolve_model_path
    from vidra.pipelines.train_tiny import tiny_agent_settings

    s = tiny_agent_settings(Settings(data_dir=home))
    s.model.path = resolve_model_path("vidra-tiny")
    s.mlflow.use_champions = True  # each cycle starts from (and rows evaluate) the champions
    s.train.eval_questions = gate_questions
    s.train.epochs = epochs  # passes over each training's samples
    # non-inferiority: a tie whose lower bound is >= -gate_tolerance is promoted too
    s.train.promote_ties = promote_ties
    # enough held-out gate worlds for the questions asked (one 3-minute world holds <= 15)
    s.train.gate_options = {**s.train.gate_options, "worlds": str(max(8, gate_questions // 10))}
    return s


class Bench:
    """The held-out benchmark: both parts, evaluated together as one row."""

    def __init__(self, videos: Path, short_worlds: int, long_worlds: int) -> None:
        self.videos = videos
        parts = {
            "short": {"worlds": short_worlds, "seed": 200, "duration": 240},
            "long": {"worlds": long_worlds, "seed": 300, "duration": 1800, "needles": 10},
        }
        self.parts = {name: o for name, o in parts.items() if o["worlds"]}  # 0: left out
        if not self.parts:
            raise SystemExit("--short-worlds and --long-worlds are both 0: nothing to ask")

    def run(self, settings: Any, adapters: dict[str, str] | None = None) -> dict[str, Any]:
        from vidra.pipelines.evaluate import EvalSpec, evaluate

        merged: dict[str, Any] = {}
        for name, opts in self.parts.items():
            spec = EvalSpec("synthetic", videos=self.videos, strategy="search", options=opts,
                            mlflow=False)  # fmt: skip
            rep = evaluate(settings, spec, adapters)
            for q in rep["per_question"]:
                q["categories"] = {**q["categories"], "part": name}
            merged = _merge(merged, rep)
        return merged


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One report from two: re-aggregated over both parts' questions."""
    from vidra.pipelines.scoring import aggregate

    if not a:
        a = {"questions": 0, "answered": 0, "failed": [], "per_question": [], "wall_s": 0.0}
    per = [*a["per_question"], *b["per_question"]]
    return {
        **aggregate(per, "multiple_choice"),
        "questions": a["questions"] + b["questions"],
        "answered": a["answered"] + b["answered"],
        "failed": [*a["failed"], *b["failed"]],
        "wall_s": a["wall_s"] + b["wall_s"],
        "per_question": per,
    }


def _scores(report: dict[str, Any]) -> dict[str, float]:
    return {q["qid"]: float(q["correct"]) for q in report["per_question"] if "correct" in q}


def _candidates(settings: Any, versions: dict[str, str]) -> dict[str, str]:
    """Adapter directories of the versions a cycle registered."""
    from vidra.rl.tracking import version_adapters
    from vidra.storage import TrajectoryStore

    with TrajectoryStore(settings=settings) as store:
        return version_adapters(settings, store, versions)


def _champions(settings: Any) -> dict[str, str]:
    from vidra.rl.tracking import champion_adapters
    from vidra.storage import TrajectoryStore

    with TrajectoryStore(settings=settings) as store:
        return champion_adapters(settings, store, list(ROLES))


# the selector's rejection-sampling SFT rows: a tool call costs a fifth of a right answer and
# temporal IoU is left out, so only right answers reach 0.5; of each question's rollouts the
# best (the cheapest right path)
_BEST: dict[str, Any] = {
    "reward_weights": {"tool_cost": 0.2, "temporal_iou": 0.0},
    "sft_best_of_group": True,
    "sft_min_reward": 0.5,
}
# the ablation's rows: roles trained, recipe (None: --algo) and train settings changed, all
# from one collection
ABLATION: dict[str, tuple[list[str], str | None, dict[str, Any]]] = {
    "selector only": (["selector"], None, {}),
    "reasoner only": (["reasoner"], None, {}),
    "critic only": (["critic"], None, {}),
    "all roles": (list(ROLES), None, {}),
    "all roles, sft alone": (list(ROLES), "sft", {}),  # which stage of the recipe does what
    "all roles, grpo alone": (list(ROLES), "grpo", {}),
    # pairs of one prompt's best and worst replies that decide differently
    "reasoner only, dpo": (["reasoner"], "dpo", {}),
    # GRPO advantages centred, not divided by the group's std (Dr. GRPO)
    "reasoner only, grpo centred": (["reasoner"], "grpo", {"normalise_std": False}),
    "all roles, grpo centred": (list(ROLES), "grpo", {"normalise_std": False}),
    # the advantage on the tokens that decide only (the reasoner's answer, not its confidence
    # and cited times)
    "reasoner only, grpo centred, decision tokens": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "loss_tokens": "decision"},
    ),
    # the reasoner's per-step groups: 4 fresh replies to each of its recorded prompts, each
    # rewarded by its own answer (its choices compared on equal inputs)
    "reasoner only, grpo centred, resampled": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 4},
    ),
    # the same with the learning rate pinned at 1e-3: vidra-tiny's own training rate
    # (`tiny_agent_settings`), so for it this row is the row above (a rerun of seed 0 gave the
    # same losses at every step); with another model it sets the rate the rows above measured
    "reasoner only, grpo centred, resampled, lr 1e-3": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 4, "lr": 1e-3},
    ),
    # the same at five times vidra-tiny's rate: its per-step training moved the reasoner little
    # (mean KL 0.008-0.04, 14 of 506 greedy answers changed)
    "reasoner only, grpo centred, resampled, lr 5e-3": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 4, "lr": 5e-3},
    ),
    # between the two: 2e-3
    "reasoner only, grpo centred, resampled, lr 2e-3": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 4, "lr": 2e-3},
    ),
    # the same with the adapter also on the vision tower and its merger: the text-only rows
    # fit their training prompts (+4 points) and did not carry to held-out ones, and what
    # vidra-tiny lacks is perception, which a language-model adapter cannot change
    "reasoner only, grpo centred, resampled, vision tower": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 4, "lora_targets": "text+vision"},
    ),
    # the critic's per-step groups: 4 fresh verdicts on each of its recorded prompts, each
    # rewarded 1 for accepting a right answer or sending a wrong one back
    "critic only, grpo centred, resampled": (
        ["critic"],
        "grpo",
        {"normalise_std": False, "resample": 4},
    ),
    # 8 replies a prompt: fewer prompts whose replies all score alike (68% of them at 4)
    "reasoner only, grpo centred, resampled 8": (
        ["reasoner"],
        "grpo",
        {"normalise_std": False, "resample": 8},
    ),
    # every tool call costs a fifth of a right answer (`tool_cost`): in the sampled collection
    # a first call that searches and one that inspects at once score alike on the same
    # question (mean advantages +0.006 and -0.006), so the cheaper path should win
    "selector only, grpo centred, tool cost 0.2": (
        ["selector"],
        "grpo",
        {"normalise_std": False, "reward_weights": {"tool_cost": 0.2}},
    ),
    # the same at five times the step: at 1e-3 the selector moved little (mean KL < 0.01)
    "selector only, grpo centred, tool cost 0.2, lr 5e-3": (
        ["selector"],
        "grpo",
        {"normalise_std": False, "reward_weights": {"tool_cost": 0.2}, "lr": 5e-3},
    ),
    # the cost per call, each charged for itself and the calls after it against the group's
    # calls at the same turn: a closing inspect is no longer charged for the search before it
    "selector only, grpo centred, tool cost to go 0.2": (
        ["selector"],
        "grpo",
        {"normalise_std": False, "reward_weights": {"tool_cost_to_go": 0.2}},
    ),
    "selector only, grpo centred, tool cost to go 0.2, lr 5e-3": (
        ["selector"],
        "grpo",
        {"normalise_std": False, "reward_weights": {"tool_cost_to_go": 0.2}, "lr": 5e-3},
    ),
    # the same on the selector's decision tokens only (its tool, not its search query): at
    # lr 5e-3 the row above drifted its queries to phrases that paid in the training worlds
    "selector only, grpo centred, tool cost to go 0.2, decision tokens": (
        ["selector"],
        "grpo",
        {
            "normalise_std": False,
            "reward_weights": {"tool_cost_to_go": 0.2},
            "loss_tokens": "decision",
        },
    ),
    "selector only, grpo centred, tool cost to go 0.2, lr 5e-3, decision tokens": (
        ["selector"],
        "grpo",
        {
            "normalise_std": False,
            "reward_weights": {"tool_cost_to_go": 0.2},
            "lr": 5e-3,
            "loss_tokens": "decision",
        },
    ),
    # rejection-sampling SFT of the selector on each question's best rollouts, a tool call
    # costing a fifth of a right answer (temporal IoU left out, so only right answers reach
    # 0.5): each question's cheapest right path, find included where it was sampled; the
    # GRPO rows above moved the tool name too little to choose find, or moved it to the bare
    # inspect everywhere
    "selector only, sft best of group, tool cost 0.2": (["selector"], "sft", _BEST),
    # the same, trained harder: at lr 1e-3 for one pass no find was chosen on the benchmark
    "selector only, sft best of group, tool cost 0.2, lr 5e-3": (
        ["selector"],
        "sft",
        {**_BEST, "lr": 5e-3},
    ),
    "selector only, sft best of group, tool cost 0.2, 3 epochs": (
        ["selector"],
        "sft",
        {**_BEST, "epochs": 3},
    ),
    # the same with each recorded search that a bare inspect followed at once learned as one
    # find of that query (`train.sft_fuse_find`: the same outcome, one call fewer, so it is
    # the question's best): the interface taught from the record, not found by sampling
    "selector only, sft best of group, tool cost 0.2, find fused": (
        ["selector"],
        "sft",
        {**_BEST, "sft_fuse_find": True},
    ),
    # the same for three passes, on every token and on the tool name alone (loss_tokens
    # decision): one pass left find 9.4 nats behind the search of the same query
    "selector only, sft best of group, tool cost 0.2, find fused, 3 epochs": (
        ["selector"],
        "sft",
        {**_BEST, "sft_fuse_find": True, "epochs": 3},
    ),
    "selector only, sft best of group, tool cost 0.2, find fused, 3 epochs, decision tokens": (
        ["selector"],
        "sft",
        {**_BEST, "sft_fuse_find": True, "epochs": 3, "loss_tokens": "decision"},
    ),
    # the same learning the selector's finds alone (`train.sft_tools`): in three passes the
    # bare inspects, most of the data, rose past the search before the find did
    "selector only, sft best of group, tool cost 0.2, find fused, finds only, 3 epochs": (
        ["selector"],
        "sft",
        {**_BEST, "sft_fuse_find": True, "sft_tools": ["find"], "epochs": 3},
    ),
    "selector only, sft best of group, tool cost 0.2, find fused, finds only, 5 epochs": (
        ["selector"],
        "sft",
        {**_BEST, "sft_fuse_find": True, "sft_tools": ["find"], "epochs": 5},
    ),
    # rejection-sampling SFT of the reasoner alone on its right rollouts (ReAgent-V, VR-Thinker):
    # 696 questions' worth, three passes; one pass of all roles on 232 questions gave +0.4
    "reasoner only, sft, 3 epochs": (["reasoner"], "sft", {"epochs": 3}),
    # the same with the adapter on the vision tower too: what vidra-tiny lacks is perception
    "reasoner only, sft, vision tower, 3 epochs": (
        ["reasoner"],
        "sft",
        {"epochs": 3, "lora_targets": "text+vision"},
    ),
    "reasoner only, sft, vision tower, 5 epochs": (
        ["reasoner"],
        "sft",
        {"epochs": 5, "lora_targets": "text+vision"},
    ),
    # the same with every right rollout kept (no preference for the cheaper path): what the
    # choice of the best adds
    "selector only, sft, tool cost 0.2": (
        ["selector"],
        "sft",
        {k: v for k, v in _BEST.items() if k != "sft_best_of_group"},
    ),
}
DEFAULT_ROWS = ("selector only", "reasoner only", "critic only", "all roles")


def _ablation(args: Any, bench: Bench, log: Any) -> dict[str, Any]:
    """Which role's training a gain comes from: one collection of cycle 1's questions (G=4,
    SFT agents) in a store of its own, then one training per row from those same episodes
    (``since_run="all"``, ``train.promote=never``: the champions stay SFT), each trained
    version answering the benchmark with the other roles at SFT. Its gate runs on
    ``--ablation-gate-questions`` and decides nothing. ``--ablation-rows`` picks rows (also
    ``all roles, sft alone`` / ``grpo alone``: which stage of the recipe does what; and
    ``reasoner only, dpo``); a store that already holds the collection (a second run in the
    same ``DIR``) is reused."""
    import ray

    from vidra.pipelines.online import collect
    from vidra.pipelines.retrain import retrain

    s = _settings(args.home / "ablation", args.ablation_gate_questions, epochs=args.epochs)
    s.train.promote = "never"
    s.agents.selector_choice_temperature = args.selector_choice_temperature
    s.agents.find_tool = args.find_tool
    s.agents.selector_explore_tools = args.selector_explore_tools
    want = {"questions": args.train_questions, "rollouts": args.collection_rollouts, "seed": 41}
    # online._pick's rule, recorded: a collection made before 1c7018d had unbalanced kinds
    made = {**want, "pick": "3 per kind per world"}
    if args.selector_choice_temperature != 1.0:  # (older collections sampled at 1)
        made["selector_choice_temperature"] = args.selector_choice_temperature
    if args.find_tool:  # (older collections had no find)
        made["find_tool"] = True
    if args.selector_explore_tools:
        made["selector_explore_tools"] = args.selector_explore_tools
    marker = args.home / "ablation" / "collection.json"  # written once each part is whole
    t, reused = time.perf_counter(), marker.is_file()
    if reused:
        got = json.loads(marker.read_text())
        if {k: got.get(k) for k in made} != made or got.get("parts", 1) > args.collections:
            raise SystemExit(f"{marker.parent} holds a collection of {got}, not {made} x "
                             f"{args.collections}: use another --home or the same "
                             "--train-questions and --collections")  # fmt: skip
        g = want["rollouts"]
        log(f"ablation: reusing the collection of {got['asked']} questions x {g} in "
            f"{marker.parent}")  # fmt: skip
    elif (marker.parent / "vidra.db").exists():
        raise SystemExit(f"{marker.parent} holds an unfinished collection (interrupted?): "
                         "remove that directory and run again")  # fmt: skip
    else:
        got = {**made, "asked": collect(s, **want)}
        marker.write_text(json.dumps(got))
    if reused:
        _record_tool_costs(s, log)
    # more parts: the questions of later online iterations (fresh worlds of their own), added
    # to the store the parts before them are in
    for part in range(got.get("parts", 1), args.collections):
        got = {**got, "asked": got["asked"] + collect(s, **want, iteration=part),
               "parts": part + 1}  # fmt: skip
        marker.write_text(json.dumps(got))
        log(f"ablation: collection part {part + 1} done, {got['asked']} questions x "
            f"{want['rollouts']} in all")  # fmt: skip
    info: dict[str, Any] = {"asked": got["asked"], "parts": got.get("parts", 1),
                            "collect_s": round(time.perf_counter() - t), "reused": reused,
                            "first_calls": _first_calls(s), "trained": {},
                            "reports": {}}  # fmt: skip
    log(f"ablation: first selector calls {info['first_calls']}")
    for name, seed in [(n, k) for n in args.ablation_rows for k in args.train_seeds]:
        roles, recipe, row_changes = ABLATION[name]
        algo, changes = recipe or args.algo, {**row_changes, "seed": seed}
        t = time.perf_counter()
        res = retrain(s.model_copy(update={"train": s.train.model_copy(update=changes)}), algo,
                      roles, since_run="all")  # fmt: skip
        label = name if seed == 0 else f"{name}, training seed {seed}"
        info["trained"][label] = {"roles": res.roles, "algo": algo, "train": changes,
                                  "samples": res.samples,
                                  "episodes": res.episodes, "gate": res.evaluation,
                                  "train_s": round(time.perf_counter() - t)}  # fmt: skip
        row = f"{label} (1 cycle, shared rollouts)"
        info["reports"][row] = bench.run(s, _candidates(s, res.versions))
        log(f"{row}: {info['reports'][row]['accuracy']:.3f} ({res.samples} samples)")
        ray.shutdown()
    return info


def _record_tool_costs(settings: Any, log: Any) -> None:
    """A collection recorded before `tool_cost` (or the step-level ``tool_cost_to_go``) was a
    reward component gets it now, from its recorded steps by the rule an episode applies
    when it ends (`is_tool_call`)."""
    from vidra.rl.rewards import is_tool_call, tool_cost, tool_cost_to_go
    from vidra.storage import TrajectoryStore

    added = {"tool_cost": 0, "tool_cost_to_go": 0}
    with TrajectoryStore(settings=settings) as store:
        for t in list(store.iter_trajectories()):
            calls = [step.order for step in t.steps if is_tool_call(step.parsed)]
            new = []
            if calls and t.reward("tool_cost") is None:
                new.append({"name": "tool_cost", "value": tool_cost(len(calls))})
            if calls and not any(r.name == "tool_cost_to_go" for r in t.rewards):
                new += tool_cost_to_go(calls)
            for name in added:
                added[name] += any(r["name"] == name for r in new)
            if new:
                store.add_rewards(t.episode.id, new)
    for name, n in added.items():
        if n:
            log(f"ablation: {name} recorded on {n} episodes of the reused collection")


def _first_calls(settings: Any) -> dict[str, Any]:
    """The collection's sampled episodes (groups of G > 1, no evaluation's answers) by their
    first selector tool call (a bare inspect ends the tool loop after one call), with the
    mean accuracy and tool calls of each, and how many groups tried more than one kind: only
    there does a tool cost compare the paths on the same question."""
    from vidra.rl.rewards import is_tool_call
    from vidra.storage import TrajectoryStore

    kinds: dict[str, list[tuple[float, int]]] = {}
    groups = mixed = 0
    with TrajectoryStore(settings=settings) as store:
        for group in store.iter_groups(min_rollouts=2, evaluations=False):
            tried = set()
            for t in group.trajectories:
                calls = [s.parsed for s in sorted(t.steps, key=lambda s: s.order)
                         if s.role == "selector" and is_tool_call(s.parsed)]  # fmt: skip
                if not calls:
                    continue
                first: dict[str, Any] = calls[0]  # type: ignore[assignment]  # a tool call
                bare = first["tool"] == "inspect" and not first.get("times")
                kind = "bare inspect" if bare else str(first["tool"])
                kinds.setdefault(kind, []).append((t.reward("accuracy") or 0.0, len(calls)))
                tried.add(kind)
            groups += bool(tried)
            mixed += len(tried) > 1
    n = sum(len(v) for v in kinds.values())
    out: dict[str, Any] = {k: {"share": round(len(v) / n, 4), "episodes": len(v),
                               "accuracy": round(sum(a for a, _ in v) / len(v), 4),
                               "tool_calls": round(sum(c for _, c in v) / len(v), 3)}
                           for k, v in sorted(kinds.items())}  # fmt: skip
    return {"by_first_call": out, "groups": groups, "groups_mixed": mixed}


def _by_kind(reports: dict[str, Any], ref: str) -> dict[str, dict[str, Any]]:
    """Each row's paired accuracy difference to ``ref`` per question kind."""
    from vidra.evals.metrics import paired_from_maps

    kinds = {q["qid"]: q["categories"]["kind"] for q in reports[ref]["per_question"]}
    theirs = _scores(reports[ref])
    out: dict[str, dict[str, Any]] = {}
    for name, rep in reports.items():
        if name == ref:
            continue
        out[name] = {}
        mine = _scores(rep)
        for kind in sorted(set(kinds.values())):
            d = paired_from_maps({q: v for q, v in mine.items() if kinds.get(q) == kind},
                                 {q: v for q, v in theirs.items() if kinds[q] == kind})  # fmt: skip
            out[name][kind] = {"n": d.n, "diff": round(d.diff, 4),
                               "ci95": [round(x, 4) for x in d.ci95]}  # fmt: skip
    return out


def _targets(rows: dict[str, Any], last: str) -> dict[str, Any]:
    """The issue's targets, for the row after the last cycle against SFT."""
    gain = rows[last]["minus_SFT"]
    acc_ci, frames = gain["accuracy"]["ci95"], gain["frames"]
    sft_frames = max(1e-9, rows["SFT"]["frames_per_question"])
    return {
        "accuracy_gain_points": round(100 * gain["accuracy"]["diff"], 1),
        "accuracy_gain_ci95_points": [round(100 * x, 1) for x in acc_ci],
        "frames_change": round(frames["diff"] / sft_frames, 3),
        "target_met": (gain["accuracy"]["diff"] >= 0.05 and acc_ci[0] > 0)
        or (acc_ci[0] <= 0 <= acc_ci[1] and frames["ci95"][1] <= -0.3 * sft_frames),
    }


def main() -> int:
    from vidra.pipelines.online import ONLINE_ALGOS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3,
                    help="online GRPO cycles (0: the ablation alone)")  # fmt: skip
    ap.add_argument("--train-questions", type=int, default=232,
                    help="questions per cycle, G=4 (from as many fresh 5-minute worlds as "
                    "needed, at most 3 questions of each kind from one: ~13)")  # fmt: skip
    ap.add_argument("--gate-questions", type=int, default=200)
    ap.add_argument("--algo", choices=ONLINE_ALGOS, default="sft+grpo",
                    help="each cycle's recipe")  # fmt: skip
    ap.add_argument("--short-worlds", type=int, default=34)  # with 3 long: >= 500 questions
    ap.add_argument("--long-worlds", type=int, default=3)
    ap.add_argument("--promote-ties", action="store_true",
                    help="the gate also promotes a tie whose paired lower bound is >= "
                    "-gate_tolerance (2 points), so cycles chain")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=1,
                    help="passes over each training's samples (cycles, ablation)")  # fmt: skip
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--ablation-rows", nargs="+", choices=list(ABLATION),
                    default=list(DEFAULT_ROWS), metavar="ROW",
                    help=f"rows of: {'; '.join(ABLATION)}")  # fmt: skip
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0], metavar="SEED",
                    help="train each ablation row once per seed (the sample order and the "
                    "adapter's initialisation), from the same rollouts: the run-to-run noise of "
                    "training")  # fmt: skip
    ap.add_argument("--collections", type=int, default=1, metavar="N",
                    help="the ablation's collection in N parts of --train-questions each, "
                    "from N online iterations' fresh worlds (a home holding fewer parts gets "
                    "the rest added)")  # fmt: skip
    ap.add_argument("--selector-choice-temperature", type=float, default=1.0, metavar="T",
                    help="the ablation's collection samples the selector's choice among tool "
                    "calls at T (> 1: tries rarely chosen calls; answers stay greedy)")  # fmt: skip
    ap.add_argument("--selector-explore-tools", type=float, default=0.0, metavar="P",
                    help="the ablation's collection: with probability P a selector turn "
                    "chooses among one kind of tool call, drawn uniformly")  # fmt: skip
    ap.add_argument("--find-tool", action="store_true",
                    help="every row, the SFT row included, offers the selector find (a search "
                    "and an inspect in one call: agents.find_tool)")  # fmt: skip
    ap.add_argument("--collection-rollouts", type=int, default=4, metavar="G",
                    help="the ablation's collection answers each question G times (1: "
                    "greedy, the upstream roles as the benchmark runs them; resampled rows "
                    "only)")  # fmt: skip
    ap.add_argument("--ablation-gate-questions", type=int, default=40,
                    help="the ablation's gate decides nothing: a small one saves time")  # fmt: skip
    ap.add_argument("--no-noise-floor", action="store_true",
                    help="skip the SFT-again row (greedy: it measured 0)")  # fmt: skip
    ap.add_argument("--home", type=Path, required=True, help="work dir (stores, videos)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if args.collections < 1:
        raise SystemExit(f"--collections {args.collections}: the ablation needs at least 1 part")
    if args.collection_rollouts < 1:
        raise SystemExit(f"--collection-rollouts {args.collection_rollouts}: at least 1")
    episodic = [r for r in args.ablation_rows if not ABLATION[r][2].get("resample")]
    if args.collection_rollouts < 2 and episodic and not args.no_ablation:
        raise SystemExit(f"--collection-rollouts 1 gives no episode groups for {episodic}: "
                         "use resampled rows only, or --collection-rollouts 2 or more")  # fmt: skip

    import ray
    import torch
    import transformers

    import vidra
    from vidra.evals.metrics import paired_from_maps
    from vidra.pipelines.online import online

    torch.set_num_threads(2)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    bench = Bench(args.home / "videos", args.short_worlds, args.long_worlds)
    main_s = _settings(args.home / "main", args.gate_questions, args.promote_ties, args.epochs)
    main_s.agents.find_tool = args.find_tool
    reports: dict[str, Any] = {"SFT": bench.run(main_s, {})}
    log(f"SFT: {reports['SFT']['accuracy']:.3f} on {reports['SFT']['answered']} questions")
    cycles: list[dict[str, Any]] = []
    ablation_info: dict[str, Any] = {}
    for k in range(1, args.cycles + 1):
        run = online(main_s, 1, questions=args.train_questions, rollouts=4, seed=40 + k,
                     algo=args.algo)  # fmt: skip
        res = run.results[0]
        name = f"after {k} cycle{'s' * (k > 1)}"
        reports[name] = bench.run(main_s, _champions(main_s))
        cycle: dict[str, Any] = {"cycle": k, "asked": run.asked[0], "samples": res.samples,
                                 "promoted": res.promoted,
                                 "decision": res.decision, "gate": res.evaluation}  # fmt: skip
        if not res.promoted:  # what the benchmark says of the version the gate turned down
            cand = {**_champions(main_s), **_candidates(main_s, res.versions)}
            reports[f"candidate {k} (rejected)"] = bench.run(main_s, cand)
        cycles.append(cycle)
        log(f"{name}: {reports[name]['accuracy']:.3f} ({res.decision})")
        ray.shutdown()
    if not args.no_ablation:
        ablation_info = _ablation(args, bench, log)
        reports.update(ablation_info.pop("reports"))
    # the noise floor: the same SFT agents answered again (a fresh evaluation, not the cached
    # one: greedy decoding batched with other episodes' calls is not bit-identical run to run)
    if not args.no_noise_floor:
        os.utime(args.home / "videos", None)  # the videos' state is part of the evaluation key
        reports["SFT again"] = bench.run(main_s, {})
        log(f"SFT again: {reports['SFT again']['accuracy']:.3f}")

    rows = {name: eval_row(rep) for name, rep in reports.items()}
    paired_rows(rows, reports, "SFT")
    scores = {name: _scores(rep) for name, rep in reports.items()}
    for name, got in scores.items():  # what bench/seed_means.py pools across result files
        rows[name]["correct"] = {q: round(v, 4) for q, v in sorted(got.items())}
    for name, by_kind in _by_kind(reports, "SFT").items():
        rows[name]["minus_SFT_by_kind"] = by_kind
    # gate against benchmark: a promoted version significantly worse than the one before it,
    # or a rejected one significantly better, is a disagreement
    names = list(reports)
    for c in cycles:
        k = c["cycle"]
        before = "SFT" if k == 1 else f"after {k - 1} cycle{'s' * (k > 2)}"
        tested = f"after {k} cycle{'s' * (k > 1)}" if c["promoted"] else f"candidate {k} (rejected)"
        d = paired_from_maps(_scores(reports[tested]), _scores(reports[before]))
        c["benchmark_diff"] = {"vs": before, "diff": round(d.diff, 4),
                               "ci95": [round(x, 4) for x in d.ci95]}  # fmt: skip
        worse, better = d.ci95[1] < 0, d.ci95[0] > 0
        c["disagrees"] = bool((c["promoted"] and worse) or (not c["promoted"] and better))
    report = header("learning", vidra=vidra.__version__, torch=torch.__version__,
                    transformers=transformers.__version__)  # fmt: skip
    report["benchmark"] = {"parts": bench.parts, "questions": reports["SFT"]["questions"],
                           "strategy": "search", "cycles": args.cycles, "algo": args.algo,
                           "train_questions_per_cycle": args.train_questions, "G": 4,
                           "ablation_collection_G": args.collection_rollouts,
                           "ablation_selector_choice_temperature":
                               args.selector_choice_temperature,
                           "find_tool": args.find_tool,
                           "ablation_selector_explore_tools": args.selector_explore_tools,
                           "epochs": args.epochs, "train_seeds": args.train_seeds,
                           "gate_questions": args.gate_questions,
                           "gate": {"promote_ties": main_s.train.promote_ties,
                                    "tolerance": main_s.train.gate_tolerance},
                           "rows": names}  # fmt: skip
    report["rows"] = rows
    report["cycles"] = cycles
    report["gate_disagreements"] = sum(c["disagrees"] for c in cycles)
    if ablation_info:
        report["ablation"] = {**ablation_info, "gate_questions": args.ablation_gate_questions,
                              "mean_of_seeds_minus_SFT": seed_means(scores, "SFT")}  # fmt: skip
    if "SFT again" in rows:
        report["noise_floor"] = rows["SFT again"]["minus_SFT"]["accuracy"]  # same agents, again
    if args.cycles:
        report["targets"] = _targets(rows, f"after {args.cycles} cycle{'s' * (args.cycles > 1)}")
    report["seconds"] = round(time.perf_counter() - t0)
    lines = [
        "| row | accuracy [95% CI] | diff vs SFT [95% paired CI] | frames / q | tool calls / q "
        "| latency s / q |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        d = r.get("minus_SFT", {}).get("accuracy")
        diff = f"{100 * d['diff']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" \
            if d else "-"  # fmt: skip
        lines.append(f"| {name} | {r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
                     f"| {diff} | {r['frames_per_question']:.1f} | "
                     f"{r['tool_calls_per_question']:.2f} | {r['latency_s']:.2f} |")  # fmt: skip
    for name, m in (report.get("ablation") or {}).get("mean_of_seeds_minus_SFT", {}).items():
        lines.append(f"| {name}, mean of {len(m['seeds'])} training seeds | - | "
                     f"{100 * m['diff']:+.1f} [{100 * m['ci95'][0]:+.1f}, "
                     f"{100 * m['ci95'][1]:+.1f}] | - | - | - |")  # fmt: skip
    print("\n".join(lines), file=sys.stderr)
    report["table_markdown"] = lines
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

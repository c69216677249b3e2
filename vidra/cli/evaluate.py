"""``vidra eval TASK ...``, ``vidra eval compare A B``, ``vidra eval tasks|runs``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["markdown", "register"]

USAGE = """examples:
  vidra eval nextqa --annotations val.csv --videos NExTVideo/ --limit 100
  vidra eval activitynet-qa --annotations test_q.json --answers test_a.json --videos v/
  vidra eval charades-sta --annotations charades_sta_test.txt --videos Charades_v1/
  vidra eval synthetic --option worlds=10 --out synthetic.json
  vidra eval needle --option minutes=30,60 --strategy coarse_to_fine
  vidra eval compare RUN_A RUN_B         (run ids, or report files written by --out)
  vidra eval tasks                       (every task, its options and metrics)"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate on a benchmark (resumable; intervals; MLflow) or compare two runs",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", help="a task name (see `vidra eval tasks`), 'compare', 'tasks', 'runs'")
    p.add_argument("refs", nargs="*", help="compare: two evaluation run ids or report files")
    p.add_argument("--annotations", type=Path, help="the benchmark's annotation file (or folder)")
    p.add_argument("--answers", type=Path, help="a separate answers/grounding file, if any")
    p.add_argument("--videos", type=Path, help="folder holding the videos, named by their ids")
    p.add_argument("--subtitles", type=Path, help="folder of subtitle files (srt/vtt/json)")
    p.add_argument("--split", help="a split the task knows (e.g. val, test, subset)")
    p.add_argument("--limit", type=int, help="at most this many questions (default: all)")
    p.add_argument("--strategy", help="frame selector (default: settings' agents.strategy)")
    p.add_argument("--max-frames", type=int, help="frames one episode may look at")
    p.add_argument("--rollouts", type=int, default=1, help="episodes per question (default 1)")
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a task option"
    )
    p.add_argument("--judge", help="model path or hub id that grades open-ended answers")
    p.add_argument("--out", type=Path, help="write the report (JSON) here")
    p.add_argument("--no-mlflow", action="store_true", help="do not log an MLflow run")
    p.add_argument("--no-traces", action="store_true", help="no MLflow trace per episode")
    p.set_defaults(func=cmd_eval)


def _options(pairs: list[str]) -> dict[str, str]:
    from vidra.errors import InvalidInput

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--option {pair!r}: write KEY=VALUE, e.g. --option worlds=10")
        out[key.strip()] = value.strip()
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "-" if math.isnan(x) else f"{x:.3f}"
    return str(x)


def _ci(v: Any) -> str:
    return f"[{_fmt(v[0])}, {_fmt(v[1])}]" if isinstance(v, list | tuple) else "-"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table: overall, per category, costs."""
    lines = [
        f"### {report['task']}: {report['answered']} of {report['questions']} answered "
        f"({len(report['missing_videos'])} videos missing, {len(report['failed'])} failed)",
        "",
        "| | n | score | 95% CI |",
        "|---|---|---|---|",
        f"| all | {report['answered']} | {_fmt(report['accuracy'])} | {_ci(report['ci95'])} |",
    ]
    for name, v in report["by_category"].items():
        lines.append(f"| {name} | {v['n']} | {_fmt(v['accuracy'])} | {_ci(v['ci95'])} |")
    if report.get("judged"):
        j = report["judged"]
        lines.append(f"| judged (model) | {j['n']} | {_fmt(j['mean'])} | {_ci(j['ci95'])} |")
    if report.get("grounding"):
        g = report["grounding"]
        lines.append("")
        lines.append("| mIoU | R@0.3 | R@0.5 | R@0.7 |")
        lines.append("|---|---|---|---|")
        lines.append(f"| {_fmt(g['miou'])} | {_fmt(g['r@0.3'])} | {_fmt(g['r@0.5'])} | "
                     f"{_fmt(g['r@0.7'])} |")  # fmt: skip
    costs = ["frames_decoded_per_question", "frames_shown_per_question", "rounds_per_question",
             "model_calls_per_question", "tokens_per_question", "latency_s"]  # fmt: skip
    lines += ["", "| " + " | ".join(c.replace("_per_question", "") for c in costs) + " |"]
    lines.append("|" + "---|" * len(costs))
    lines.append("| " + " | ".join(_fmt(report.get(c)) for c in costs) + " |")
    if report.get("evidence_seen"):
        e = report["evidence_seen"]
        lines.append(f"\nevidence shown to the reasoner: {_fmt(e['mean'])} {_ci(e['ci95'])}")
    lines.append(f"\nevaluation run {report['run_id']}; MLflow run {report['mlflow_run_id']}")
    return "\n".join(lines)


def _tasks() -> int:
    from vidra.evals import TASKS

    for name, t in TASKS.items():
        opts = ", ".join(f"{k}" for k in t.options) or "-"
        print(f"{name:<16} {t.style:<16} {', '.join(t.metrics):<28} options: {opts}")
        print(f"{'':<16} {t.description}")
    return 0


def _runs(settings: Any) -> int:
    from vidra.storage import TrajectoryStore

    with TrajectoryStore(settings=settings) as store:
        for r in store.eval_runs():
            acc = r.metrics.get("accuracy")
            score = f"{acc:.3f}" if isinstance(acc, float) else "-"
            print(f"{r.id}  {r.task:<16} {r.status:<8} {score}  {r.created_at:%Y-%m-%d %H:%M}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from vidra.config import load_settings
    from vidra.errors import InvalidInput

    settings = load_settings()
    if args.task == "tasks":
        return _tasks()
    if args.task == "runs":
        return _runs(settings)
    if args.task == "compare":
        if len(args.refs) != 2:
            raise InvalidInput("vidra eval compare needs two runs: vidra eval compare A B")
        from vidra.pipelines.evaluate import compare

        print(json.dumps(compare(settings, *args.refs), indent=2))
        return 0
    if args.refs:
        raise InvalidInput(f"unexpected arguments {args.refs}; see `vidra eval --help`")
    return _run(settings, args)


def _run(settings: Any, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vidra.pipelines.evaluate import EvalSpec, evaluate

    spec = EvalSpec(
        task=args.task, annotations=args.annotations, videos=args.videos, answers=args.answers,
        subtitles=args.subtitles, split=args.split, limit=args.limit, strategy=args.strategy,
        max_frames=args.max_frames, rollouts=args.rollouts, options=_options(args.option),
        judge=args.judge, mlflow=not args.no_mlflow, traces=not args.no_traces, out=args.out,
    )  # fmt: skip
    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[score]}"), console=console)  # fmt: skip
    tid = bar.add_task(f"eval {args.task}", total=None, score="")
    right: list[float] = []

    def progress(done: int, total: int, result: dict[str, Any] | None) -> None:
        if not bar.live.is_started:  # shown once the task loaded and its jobs are queued
            bar.start()
        if result and result.get("correct") is not None:
            right.append(float(result["correct"]))
        score = f"score {sum(right) / len(right):.3f}" if right else ""
        bar.update(tid, completed=done, total=total, score=score)

    try:
        report = evaluate(settings, spec, progress=progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    print(markdown(report))
    if args.out:
        print(f"report written to {args.out}")
    return 0

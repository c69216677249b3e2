"""Shared by the benchmark scripts: the report header (date, machine) and JSON output."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["emit", "eval_row", "header", "paired_rows", "seed_means"]


def header(name: str, **versions: str) -> dict[str, Any]:
    """``benchmark``, ``date`` (UTC), ``machine`` (cores, platform, python) and ``versions``."""
    return {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "versions": versions,
    }


def emit(report: dict[str, Any], out: Path | None) -> None:
    """Print the report as JSON and also write it to ``out`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def eval_row(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of a `Client.evaluate` report: accuracy with its interval, costs."""
    return {
        "questions": report["questions"],
        "answered": report["answered"],
        "failed": len(report["failed"]),
        "accuracy": round(report["accuracy"], 4),
        "ci95": [round(x, 4) for x in report["ci95"]],
        "evidence_seen": report.get("evidence_seen"),
        "frames_per_question": report["frames_per_question"],
        "tool_calls_per_question": report["tool_calls_per_question"],
        "model_calls_per_question": report["model_calls_per_question"],
        "latency_s": report["latency_s"],
        "wall_s": report["wall_s"],
        "by_category": {
            k: {
                "n": v["n"],
                "accuracy": round(v["accuracy"], 4),
                "ci95": [round(x, 4) for x in v["ci95"]],
            }
            for k, v in report["by_category"].items()
        },
    }


def paired_rows(rows: dict[str, dict[str, Any]], reports: dict[str, Any], ref: str) -> None:
    """Add to each row the paired bootstrap difference ``row - ref`` of per-question
    accuracy, frames shown, tool calls and latency (s), on the questions both answered."""
    from vidra.evals.metrics import paired_from_maps

    def per(r: dict[str, Any], key: str) -> dict[str, float]:
        return {q["qid"]: float(q[key]) for q in r["per_question"] if q.get(key) is not None}

    for name, rep in reports.items():
        if name == ref:
            continue
        out = {}
        for key, label in (("correct", "accuracy"), ("frames_shown", "frames"),
                           ("tool_calls", "tool_calls"), ("latency_s", "latency_s")):  # fmt: skip
            d = paired_from_maps(per(rep, key), per(reports[ref], key))
            ci = [round(x, 4) for x in d.ci95]
            out[label] = {"n": d.n, "diff": round(d.diff, 4), "ci95": ci,
                          "p_value": round(d.p_value, 4)}  # fmt: skip
        rows[name][f"minus_{ref}"] = out


def seed_means(scores: dict[str, dict[str, float]], ref: str) -> dict[str, dict[str, Any]]:
    """``scores``: each row's per-question score (qid -> 0/1), rows of one recipe trained
    with several seeds labelled ``"<recipe>[, training seed k] (1 cycle, shared rollouts)"``
    (no suffix: seed 0). For each recipe with two or more seeds: every question's mean score
    over the seeds' trainings minus ``ref``'s, paired-bootstrapped over the questions all of
    them answered (the recipe's effect with the run-to-run noise of training averaged out)."""
    from vidra.evals.metrics import paired_from_maps

    recipes: dict[str, dict[int, dict[str, float]]] = {}
    for label, got in scores.items():
        m = re.fullmatch(r"(.+?)(?:, training seed (\d+))? \(1 cycle, shared rollouts\)", label)
        if m:
            recipes.setdefault(m[1], {})[int(m[2] or 0)] = got
    out: dict[str, dict[str, Any]] = {}
    for name, by_seed in recipes.items():
        if len(by_seed) < 2:
            continue
        shared = set.intersection(*(set(g) for g in by_seed.values()))
        mean = {q: sum(g[q] for g in by_seed.values()) / len(by_seed) for q in shared}
        d = paired_from_maps(mean, scores[ref])
        out[name] = {"seeds": sorted(by_seed), "n": d.n, "diff": round(d.diff, 4),
                     "ci95": [round(x, 4) for x in d.ci95]}  # fmt: skip
    return out

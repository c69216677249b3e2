"""Benchmarks for vidra: tasks declared once by short name, loaded into `EvalItem`s, and scored
by pure functions with intervals.

A layer below the application pipelines: it imports only `vidra.errors`, `vidra.config` and
`vidra.video`; it never runs agents or models (the harness in `vidra.pipelines` does).
"""

from vidra.evals.items import EvalItem, LoadRequest, LoadResult, Style, TaskSpec
from vidra.evals.metrics import (
    PairedDiff,
    accuracy,
    bootstrap_ci,
    by_category,
    grounded_accuracy,
    grounding_scores,
    iop,
    iou,
    normalised_match,
    paired_bootstrap,
    paired_from_maps,
    parse_choice,
    parse_span_text,
)
from vidra.evals.registry import TASKS, load_task

__all__ = [
    "TASKS",
    "EvalItem",
    "LoadRequest",
    "LoadResult",
    "PairedDiff",
    "Style",
    "TaskSpec",
    "accuracy",
    "bootstrap_ci",
    "by_category",
    "grounded_accuracy",
    "grounding_scores",
    "iop",
    "iou",
    "load_task",
    "normalised_match",
    "paired_bootstrap",
    "paired_from_maps",
    "parse_choice",
    "parse_span_text",
]

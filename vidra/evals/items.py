"""The records every benchmark loads into: `EvalItem`, `LoadRequest`, `LoadResult`, `TaskSpec`.

Pure data; reading files is the tasks' job, scoring is `vidra.evals.metrics`'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["EvalItem", "LoadRequest", "LoadResult", "Style", "TaskSpec"]

Style = Literal["multiple_choice", "open_ended", "grounding"]


@dataclass(frozen=True)
class EvalItem:
    """One question of one benchmark, with its ground truth and where its video is.

    Attributes:
        task: the registry name of the benchmark (``"nextqa"``).
        qid: the question's id, unique within the load (NExT-QA: ``"<video>_<qid>"``).
        video_id: the video's id as the annotations write it.
        path: the resolved video file, ``None`` when it is missing.
        question: the question text (for grounding: the sentence to localise).
        options: the option texts for multiple choice (letter prefixes stripped).
        answer: ground-truth text (the right option's text, the open-ended answer);
            ``None`` for grounding and for splits whose answers are withheld.
        answer_index: index of the right option in ``options``.
        span: ``(start, end)`` seconds: the grounding truth, or the evidence window a
            benchmark gives (LVBench ``time_reference``, the needle's window).
        spans: every ground-truth window when a benchmark gives several (NExT-GQA);
            ``span`` is the first of them.
        evidence: times (s) where a single frame shows the answer, when known.
        categories: breakdown keys, e.g. ``{"type": "CW", "group": "C"}``.
        subtitles: path to this video's subtitle file, when one was found.
        style: how the item is scored.
    """

    task: str
    qid: str
    video_id: str
    path: str | None
    question: str
    options: list[str] | None
    answer: str | None
    answer_index: int | None
    span: tuple[float, float] | None = None
    evidence: list[float] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)
    subtitles: str | None = None
    style: Style = "multiple_choice"
    spans: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class LoadRequest:
    """What `vidra.evals.load_task` was asked to load (paths already expanded)."""

    task: str
    annotations: Path | None
    videos: Path | None
    answers: Path | None = None
    subtitles: Path | None = None
    split: str | None = None
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    """The items of one load, and everything that did not go to plan.

    Attributes:
        items: the questions, in file order (at most ``limit``).
        missing_videos: qids whose video file was not found (their items have ``path=None``).
        warnings: tolerated irregularities, one line each (duplicates dropped, unknown
            columns, trailing commas, answers given as text where an index was expected).
        skipped: malformed rows left out: ``{"row": n, "qid": ..., "reason": ...}``.
    """

    items: list[EvalItem] = field(default_factory=list)
    missing_videos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark declared once: its name, scoring style, metrics and loader.

    Attributes:
        name: short registry name.
        style: the scoring style of its items.
        description: one line for ``--help`` and reports.
        metrics: metric names the harness reports (``"accuracy"``, ``"miou"``, ...).
        load: reads a `LoadRequest` into a `LoadResult`.
        options: option name -> help text (``key=value`` options the loader accepts).
        splits: accepted ``split`` values (empty: the task has no splits).
        needs_annotations: ``False`` for generated tasks (synthetic, needle).
    """

    name: str
    style: Style
    description: str
    metrics: tuple[str, ...]
    load: Callable[[LoadRequest], LoadResult]
    options: dict[str, str] = field(default_factory=dict)
    splits: tuple[str, ...] = ()
    needs_annotations: bool = True

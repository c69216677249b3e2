"""The benchmark registry: every task declared once by short name, and `load_task`.

Loaders live in `vidra.evals.tasks`; this table says what each one is and how it is scored.
It does not run models or score predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidra.errors import ConfigError, InvalidInput
from vidra.evals.items import LoadRequest, LoadResult, Style, TaskSpec
from vidra.evals.tasks.activitynet import load_activitynet_qa
from vidra.evals.tasks.charades import load_charades_sta
from vidra.evals.tasks.egoschema import load_egoschema
from vidra.evals.tasks.longvideobench import load_longvideobench
from vidra.evals.tasks.lvbench import load_lvbench
from vidra.evals.tasks.mlvu import load_mlvu
from vidra.evals.tasks.needle import load_needle
from vidra.evals.tasks.nextqa import load_nextgqa, load_nextqa
from vidra.evals.tasks.synthetic import load_synthetic
from vidra.evals.tasks.videomme import load_videomme

__all__ = ["TASKS", "load_task"]

_MC = ("accuracy",)
_GROUNDING = ("miou", "r@0.3", "r@0.5", "r@0.7")
_SYNTH_OPTS = {
    "worlds": "number of worlds (default 10)",
    "duration": "seconds per world (default 240)",
    "seed": "first world's seed (default 0)",
    "per_kind": "questions per kind per world (default 3)",
    "fps": "frame rate (default 4)",
    "needles": "needles per world (default 1)",
}
_NEEDLE_OPTS = {
    "source": "synthetic (generated haystacks) or videos (every video under --videos)",
    "minutes": "synthetic haystack lengths, comma-separated (default 30,60)",
    "count": "needles per haystack length (synthetic) or per video (default 1)",
    "seed": "seed of needle looks and positions (default 0)",
    "fps": "synthetic haystack frame rate (default 4)",
    "cache": "where re-encoded real haystacks go (default <data dir>/needle-cache)",
}


def _spec(
    name: str, style: Style, description: str, metrics: tuple[str, ...], load: Any, **kw: Any
) -> TaskSpec:
    return TaskSpec(name, style, description, metrics, load, **kw)


_MAP = {"map": "path of NExT-QA's map_vid_vidorID.json (default: beside the csv)"}
_SPECS = [
    _spec(
        "nextqa",
        "multiple_choice",
        "NExT-QA multiple choice: causal, temporal, descriptive",
        _MC,
        load_nextqa,
        options=_MAP,
    ),
    _spec(
        "activitynet-qa",
        "open_ended",
        "ActivityNet-QA open-ended questions",
        ("exact_match",),
        load_activitynet_qa,
    ),
    _spec(
        "egoschema",
        "multiple_choice",
        "EgoSchema 5-way questions on 3-min egocentric clips",
        _MC,
        load_egoschema,
        splits=("subset", "full"),
    ),
    _spec(
        "videomme",
        "multiple_choice",
        "Video-MME 4-way questions, short to hour-long videos",
        _MC,
        load_videomme,
    ),
    _spec("mlvu", "multiple_choice", "MLVU multiple-choice tasks on long videos", _MC, load_mlvu),
    _spec(
        "longvideobench",
        "multiple_choice",
        "LongVideoBench referring questions, subtitles",
        _MC,
        load_longvideobench,
        splits=("val", "test"),
    ),
    _spec(
        "lvbench",
        "multiple_choice",
        "LVBench 4-way questions on hour-long videos",
        _MC,
        load_lvbench,
    ),
    _spec(
        "charades-sta",
        "grounding",
        "Charades-STA sentence grounding",
        _GROUNDING,
        load_charades_sta,
    ),
    _spec(
        "nextgqa",
        "multiple_choice",
        "NExT-GQA: NExT-QA questions with grounding windows",
        (*_MC, "miou", "r@0.3", "r@0.5", "miop", "iop@0.3", "iop@0.5", "acc@gqa"),
        load_nextgqa,
        options=_MAP,
    ),
    _spec(
        "synthetic",
        "multiple_choice",
        "vidra's synthetic worlds, exact evidence times",
        _MC,
        load_synthetic,
        options=_SYNTH_OPTS,
        needs_annotations=False,
    ),
    _spec(
        "needle",
        "multiple_choice",
        "needle in a video haystack (V-NIAH style)",
        _MC,
        load_needle,
        options=_NEEDLE_OPTS,
        needs_annotations=False,
    ),
]
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _SPECS}


def _path(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def _check(spec: TaskSpec, videos: Path | None, split: str | None, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise ConfigError(
            f"task {spec.name!r} has no option {', '.join(unknown)}; fix: use one of: {allowed}"
        )
    if split is not None and split not in spec.splits:
        allowed = ", ".join(spec.splits) or "none (leave split unset)"
        raise ConfigError(f"task {spec.name!r} has no split {split!r}; fix: use {allowed}")
    if spec.needs_annotations and videos is not None and not videos.is_dir():
        raise ConfigError(f"--videos {videos} is not a folder; fix: pass the benchmark's videos")


def load_task(
    name: str,
    annotations: Path | str | None,
    videos: Path | str | None,
    answers: Path | str | None = None,
    subtitles: Path | str | None = None,
    split: str | None = None,
    limit: int | None = None,
    **options: Any,
) -> LoadResult:
    """Load benchmark ``name``'s questions, resolving their videos and subtitles.

    Args:
        name: a key of `TASKS` (``"nextqa"``, ``"videomme"``, ...).
        annotations: the benchmark's annotation file (unused by generated tasks).
        videos: the folder holding its videos (generated tasks write theirs there).
        answers: a separate answers/grounding file where the format has one.
        subtitles: a folder of subtitle files, matched to videos by name.
        split: for tasks with splits (EgoSchema ``subset|full``, LongVideoBench ``val|test``).
        limit: keep at most this many questions (generated tasks stop generating).
        **options: task options (``worlds=3``, ``map=...``); see ``TASKS[name].options``.

    Raises:
        ConfigError: unknown task, option or split; missing or misplaced paths.
        AnnotationError: the file is not in the task's format (names file, row, fields).
    """
    spec = TASKS.get(name)
    if spec is None:
        raise ConfigError(f"unknown task {name!r}; fix: choose one of {', '.join(TASKS)}")
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit={limit} is negative; fix: pass limit >= 0 or None for all")
    vids = _path(videos)
    _check(spec, vids, split, options)
    request = LoadRequest(
        task=name,
        annotations=_path(annotations),
        videos=vids,
        answers=_path(answers),
        subtitles=_path(subtitles),
        split=split,
        limit=limit,
        options=dict(options),
    )
    result = spec.load(request)
    if not spec.needs_annotations and annotations is not None:
        result.warnings.append(f"task {name!r} generates its questions: --annotations ignored")
    if limit is not None:
        result.items = result.items[:limit]
        kept = {i.qid for i in result.items}
        result.missing_videos = [q for q in result.missing_videos if q in kept]
    return result

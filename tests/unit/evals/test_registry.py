"""The registry and its refusals: unknown tasks, options and splits, and files that are not
the named format fail at once with one line naming the file, the row and the fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.evals import formats
from vidra.errors import AnnotationError, ConfigError, InvalidInput
from vidra.evals import TASKS, load_task


def test_every_task_is_declared_once_with_metrics() -> None:
    assert set(TASKS) == {
        "nextqa",
        "activitynet-qa",
        "egoschema",
        "videomme",
        "mlvu",
        "longvideobench",
        "lvbench",
        "charades-sta",
        "nextgqa",
        "synthetic",
        "needle",
    }
    for name, spec in TASKS.items():
        assert spec.name == name and spec.metrics and spec.description
    assert TASKS["charades-sta"].style == "grounding"
    assert TASKS["activitynet-qa"].metrics == ("exact_match",)


def test_unknown_task_lists_the_tasks() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'nope'.*nextqa, activitynet-qa"):
        load_task("nope", None, None)


def test_unknown_option_split_limit_and_missing_annotations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no option worlds; fix: use one of: map"):
        load_task("nextqa", tmp_path / "x.csv", None, worlds=3)
    with pytest.raises(ConfigError, match="no split 'dev'; fix: use subset, full"):
        load_task("egoschema", tmp_path / "q.json", None, split="dev")
    with pytest.raises(InvalidInput, match="limit=-1"):
        load_task("nextqa", tmp_path / "x.csv", None, limit=-1)
    with pytest.raises(ConfigError, match="needs --annotations"):
        load_task("nextqa", None, None)
    with pytest.raises(ConfigError, match="is not a folder"):
        load_task("nextqa", tmp_path / "x.csv", tmp_path / "no-such-dir")
    with pytest.raises(ConfigError, match="option worlds='many' is not an integer"):
        load_task("synthetic", None, tmp_path, worlds="many")
    with pytest.raises(ConfigError, match="pass --videos DIR"):
        load_task("synthetic", None, None)


def _videomme_parquet(root: Path) -> Path:
    path = root / "videomme.parquet"
    pq.write_table(pa.Table.from_pylist(formats.videomme_rows()), path)
    return path


def _videomme_json(root: Path) -> Path:
    path = root / "videomme.json"
    path.write_text(json.dumps(formats.videomme_rows()))
    return path


def _write(name: str, text: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).write_text(text)
        return root / name

    return make


WRONG = [
    ("nextqa", _videomme_parquet, "header", "video, question, answer, qid"),
    ("nextqa", _videomme_json, "header", "video, question, answer, qid"),
    ("nextqa", _write("few.csv", "video,question\n1,why\n"), "header", "a0, a1"),
    ("nextgqa", _write("few.csv", "video_id,qid\n1,2\n"), "header", "question, answer"),
    ("videomme", formats.nextqa, "row 1", "question_id, question, options"),
    ("videomme", _write("v.parquet", "not parquet"), None, "parquet"),
    ("egoschema", _write("q.json", '{"q_uid": "x"}'), None, "q_uid, question, option 0"),
    ("egoschema", _videomme_json, "row 1", "q_uid, question, option 0"),
    ("activitynet-qa", _write("q.json", '["a", "b"]'), "row 1", "video_name, question"),
    ("activitynet-qa", _write("q.json", '[{"video_name": "a"'), None, "not valid JSON"),
    ("mlvu", lambda r: formats.activitynet(r)[0], "row 1", "video, duration, question"),
    ("longvideobench", _videomme_json, "row 1", "question, candidates, correct_choice"),
    ("lvbench", formats.egoschema, "row 1", "key, qa"),
    ("charades-sta", formats.nextqa, "row 1", "vid start end##sentence"),
    ("charades-sta", _write("c.json", "[1, 2]"), None, "timestamps, sentences"),
    ("nextqa", lambda r: r / "absent.csv", None, "no such file"),
]


@pytest.mark.parametrize(("task", "make", "row", "fields"), WRONG)
def test_wrong_format_fails_at_once_in_one_line(
    tmp_path: Path,
    task: str,
    make: Callable[[Path], Path],
    row: str | None,
    fields: str,
) -> None:
    path = make(tmp_path)
    with pytest.raises(AnnotationError) as info:
        load_task(task, path, None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    if row is not None:
        assert f"{path}, {row}:" in message
    assert fields in message
    assert "fix:" in message

"""The shared plumbing: lenient JSON, option prefixes and inline options, answer forms,
finding files, and subtitles matched to any task's videos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.evals import formats
from tests.unit.evals.conftest import Videos
from vidra.errors import AnnotationError
from vidra.evals import load_task
from vidra.evals.choices import inline_options, resolve_answer, split_prefix, strip_prefixes
from vidra.evals.files import read_json
from vidra.evals.resolve import FileFinder


def test_trailing_commas_are_dropped_outside_strings_only(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"a": ["x,]", "say \\"hi\\",}",], "b": {"c": 1,},}')
    data, warnings = read_json(path)
    assert data == {"a": ["x,]", 'say "hi",}'], "b": {"c": 1}}
    assert warnings == ["t.json: 3 trailing comma(s) tolerated"]
    path.write_text('[{"a": 1}]')
    assert read_json(path) == ([{"a": 1}], [])
    path.write_text('[{"a": 1},\n {"b": }]')
    with pytest.raises(AnnotationError, match=r"t\.json: not valid JSON .*fix: fix line 2"):
        read_json(path)


def test_option_prefixes() -> None:
    assert split_prefix("A. Apples.") == ("A", "Apples.")
    assert split_prefix("(B) two words") == ("B", "two words")
    assert split_prefix("C) x") == ("C", "x")
    assert split_prefix("A man walks") == (None, "A man walks")
    assert strip_prefixes(["A. x", "B. y"]) == (["x", "y"], True)
    assert strip_prefixes(["A man walks", "B. y"]) == (["A man walks", "B. y"], False)
    assert strip_prefixes(["B. x", "A. y"]) == (["B. x", "A. y"], False)  # out of order


def test_inline_options() -> None:
    stem, options = inline_options("Which one?\n(A) red\n(B) blue (ish)\n(C) green")
    assert (stem, options) == ("Which one?", ["red", "blue (ish)", "green"])
    assert inline_options("Is (A) here alone?") == ("Is (A) here alone?", [])


def test_answers_as_index_letter_or_text() -> None:
    opts = ["1", "2", "Berries."]
    assert resolve_answer(2, opts, "index") == (2, "index")
    assert resolve_answer("1", opts, "index") == (1, "index")
    assert resolve_answer("1", opts, "text") == (0, "text")  # the expected form wins
    assert resolve_answer("C", opts, "letter") == (2, "letter")
    assert resolve_answer("(c)", opts, "index") == (2, "letter")
    assert resolve_answer("C. Berries.", opts, "letter") == (2, "letter")
    assert resolve_answer("berries", opts, "letter") == (2, "text")
    assert resolve_answer("Z", opts, "letter") == (None, None)
    assert resolve_answer(True, opts, "index") == (None, None)


def test_file_finder(tmp_path: Path, videos: Videos) -> None:
    videos.add("a.mkv", "deep/er/b.mp4", ".hidden/c.mp4")
    finder = FileFinder(videos.root)
    assert finder.find("a") == videos.root / "a.mkv"
    assert finder.find("a.mp4") == videos.root / "a.mkv"  # same stem, other container
    assert finder.find("b.mp4") == videos.root / "deep/er/b.mp4"
    assert finder.find("c") is None
    assert FileFinder(None).find("a") is None


def test_subtitles_are_matched_to_any_tasks_videos(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "4010069381.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n")
    res = load_task("nextqa", formats.nextqa(tmp_path), None, subtitles=subs, limit=2)
    assert res.items[0].subtitles == str(subs / "4010069381.vtt")
    assert res.items[1].subtitles is None


def test_limit_keeps_missing_videos_consistent(tmp_path: Path) -> None:
    q = tmp_path / "val_q.json"
    q.write_text(
        json.dumps(
            [{"video_name": f"v{k}", "question": "q?", "question_id": str(k)} for k in range(5)]
        )
    )
    res = load_task("activitynet-qa", q, None, limit=2)
    assert [i.qid for i in res.items] == ["0", "1"] and res.missing_videos == ["0", "1"]

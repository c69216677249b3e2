"""Video-MME, MLVU, LongVideoBench, LVBench, Charades-STA: formats, videos, categories,
subtitles, and the messy rows real files have."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.unit.evals import formats
from tests.unit.evals.conftest import Videos
from vidra.evals import load_task


def test_videomme_parquet_subtitles_and_categories(tmp_path: Path, videos: Videos) -> None:
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(formats.videomme_rows()), path)
    videos.add("data/fFjv93ACGo8.mp4")  # lmms-eval's layout: <cache>/data/<videoID>.mp4
    subs = tmp_path / "subtitle"
    subs.mkdir()
    (subs / "fFjv93ACGo8.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    res = load_task("videomme", path, videos.root, subtitles=subs)
    first = res.items[0]
    assert [i.qid for i in res.items] == ["001-1", "001-2", "002-1", "002-2"]
    assert first.options == ["Apples.", "Candles.", "Berries.", "None."]
    assert (first.answer, first.answer_index) == ("Berries.", 2)
    assert first.video_id == "fFjv93ACGo8"
    assert first.path == str(videos.root / "data/fFjv93ACGo8.mp4")
    assert first.subtitles == str(subs / "fFjv93ACGo8.srt")
    assert first.categories == {
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "task_type": "Counting Problem",
    }
    assert res.items[2].subtitles is None
    assert res.missing_videos == ["002-1", "002-2"]
    assert res.warnings == [] and res.skipped == []


def test_videomme_template_with_trailing_commas(tmp_path: Path) -> None:
    res = load_task("videomme", formats.videomme_template(tmp_path), None)
    first, second = res.items
    assert first.answer == "Berries." and first.categories["duration"] == "short"
    assert second.question.endswith('"news", or not?')
    assert second.options is not None and second.options[0] == "News, report."
    assert second.answer_index == 1  # given as the option text instead of a letter
    text = "\n".join(res.warnings)
    assert "4 trailing comma(s) tolerated" in text
    assert "answers given as text where a letter was expected (001-2)" in text


def test_videomme_jsonl_bare_options(tmp_path: Path) -> None:
    rows = formats.videomme_rows()[:2]
    rows[0]["options"] = ["Apples.", "Candles.", "Berries.", "None."]
    rows[1]["options"] = "not a list"
    path = tmp_path / "videomme.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    res = load_task("videomme", path, None)
    assert res.items[0].answer == "Berries."
    assert any("without 'A. ' prefixes" in w for w in res.warnings)
    assert res.skipped[0]["qid"] == "001-2"


def test_mlvu_text_answers_nested_video_folders_and_generation_rows(
    tmp_path: Path, videos: Videos
) -> None:
    path = formats.mlvu(tmp_path)
    videos.add("video/plotQA/movie101_66.mp4")
    res = load_task("mlvu", tmp_path, videos.root)  # the folder of json files
    assert [i.qid for i in res.items] == [
        "plotQA/movie101_66/0",
        "plotQA/movie101_66/1",
        "findNeedle/needle_32/0",
    ]
    first = res.items[0]
    assert (first.answer, first.answer_index) == ("Yellow", 0)
    assert first.path == str(videos.root / "video/plotQA/movie101_66.mp4")
    assert first.categories == {"question_type": "plotQA"}
    assert res.items[1].answer == "b"  # given as a letter
    assert res.missing_videos == ["findNeedle/needle_32/0"]
    assert "generation question" in res.skipped[0]["reason"]
    assert len(load_task("mlvu", path, videos.root, limit=1).items) == 1


def test_longvideobench_candidates_options_letters_and_subtitles(
    tmp_path: Path, videos: Videos
) -> None:
    path = formats.longvideobench(tmp_path)
    videos.add("86CxyhFV9MI.mp4")
    subs = tmp_path / "subtitles"
    subs.mkdir()
    (subs / "86CxyhFV9MI_en.json").write_text(
        json.dumps([{"start": "00:00:01", "end": "00:00:02", "line": "hi"}])
    )
    res = load_task("longvideobench", path, videos.root, subtitles=subs, split="val")
    a, b, c = res.items
    assert (a.qid, a.answer, a.answer_index) == ("86CxyhFV9MI_0", "a car", 2)
    assert a.categories == {"duration_group": "600", "question_category": "S2E"}
    assert a.subtitles == str(subs / "86CxyhFV9MI_en.json")
    assert b.options == ["x", "y", "z"] and b.answer == "y"
    assert c.path is None and res.missing_videos == ["gone_0"]
    assert any("answers given as letter" in w for w in res.warnings)
    test = load_task("longvideobench", path, videos.root, split="test")
    assert all(i.answer is None for i in test.items)


def test_lvbench_inline_options_spans_and_multi_label(tmp_path: Path, videos: Videos) -> None:
    path = formats.lvbench(tmp_path)
    videos.add("sLxlYWc6Bps.mp4")
    res = load_task("lvbench", path, videos.root)
    first, second, fourth = res.items
    assert first.question == "What year appears in the opening caption?"
    assert first.options == ["1636", "1366", "1363", "1633"]
    assert (first.answer, first.span) == ("1366", (15.0, 19.0))
    assert first.categories == {
        "question_type": "key information retrieval|reasoning",
        "video_type": "sport",
    }
    assert second.options == ["red", "blue", "nobody", "both"] and second.answer == "nobody"
    assert second.span == (3723.0, 3750.0)
    assert fourth.qid == "4" and fourth.span is None and fourth.path is None
    assert res.missing_videos == ["4"]
    reasons = sorted(s["reason"] for s in res.skipped)
    assert reasons[0] == "no (A)/(B) options in the question text"
    assert reasons[1].startswith("not a JSON line")


def test_charades_sta_grounding(tmp_path: Path, videos: Videos) -> None:
    path = formats.charades(tmp_path)
    videos.add("3MSZA.mp4")
    res = load_task("charades-sta", path, videos.root)
    assert [i.qid for i in res.items] == ["3MSZA_0", "3MSZA_1", "AO8RW_0"]
    first = res.items[0]
    assert (first.style, first.span, first.answer, first.options) == (
        "grounding",
        (24.3, 30.4),
        None,
        None,
    )
    assert first.question == "person turn a light on."
    assert res.missing_videos == ["AO8RW_0"]
    assert any("duplicate queries" in w for w in res.warnings)
    assert res.skipped[0]["row"] == 5
    as_json = tmp_path / "charades.json"
    as_json.write_text(
        json.dumps(
            {"3MSZA": {"duration": 30.0, "timestamps": [[1, 2]], "sentences": ["a person sits."]}}
        )
    )
    assert load_task("charades-sta", as_json, videos.root).items[0].span == (1.0, 2.0)

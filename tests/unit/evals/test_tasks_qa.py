"""NExT-QA, NExT-GQA, ActivityNet-QA, EgoSchema: formats, videos, categories, messy rows."""

from __future__ import annotations

from pathlib import Path

from tests.unit.evals import formats
from tests.unit.evals.conftest import Videos
from vidra.evals import load_task


def test_nextqa_sampled_rows_map_categories_and_messy_rows(tmp_path: Path, videos: Videos) -> None:
    csv = formats.nextqa(tmp_path)
    videos.add("1106/4010069381.mp4", "1104/4882821564.mp4", "0058/6329077812.mp4")
    res = load_task("nextqa", csv, videos.root)
    by_id = {i.qid: i for i in res.items}
    assert list(by_id) == [
        "4010069381_6",
        "4882821564_1",
        "2435100235_7",
        "6329077812_7",
        "8547321641_7",
        "4010069381_9",
    ]
    first = by_id["4010069381_6"]
    assert first.path == str(videos.root / "1106/4010069381.mp4")
    assert (first.answer, first.answer_index) == ("roll the handle", 0)
    assert first.style == "multiple_choice"
    assert first.categories == {"type": "CH", "group": "C"}
    assert first.options is not None and len(first.options) == 5
    assert by_id["6329077812_7"].categories == {"type": "TN", "group": "T"}  # TP counted as TN
    assert by_id["8547321641_7"].answer == "one"
    assert by_id["4010069381_9"].answer_index == 1  # answer given as text
    assert res.missing_videos == ["2435100235_7", "8547321641_7"]
    assert by_id["2435100235_7"].path is None
    assert [s["row"] for s in res.skipped] == [7]  # the short row
    text = "\n".join(res.warnings)
    for expected in (
        "duplicate question ids dropped (first kept) (4010069381_6)",
        "unknown columns ignored: extra_col",
        "answers given as text",
        "type TP counted as TN",
    ):
        assert expected in text


def test_nextqa_without_map_uses_video_names(tmp_path: Path, videos: Videos) -> None:
    csv = formats.nextqa(tmp_path)
    (tmp_path / "map_vid_vidorID.json").unlink()
    videos.add("4010069381.mp4")
    res = load_task("nextqa", csv, videos.root, limit=2)
    assert [i.path is not None for i in res.items] == [True, False]
    assert res.missing_videos == ["4882821564_1"]


def test_nextqa_map_option_and_map_under_videos(tmp_path: Path, videos: Videos) -> None:
    csv = formats.nextqa(tmp_path)
    moved = tmp_path / "elsewhere.json"
    (tmp_path / "map_vid_vidorID.json").rename(moved)
    videos.add("1106/4010069381.mp4")
    assert load_task("nextqa", csv, videos.root, map=moved, limit=1).items[0].path is not None
    moved.rename(videos.root / "map_vid_vidorID.json")
    assert load_task("nextqa", csv, videos.root, limit=1).items[0].path is not None


def test_nextgqa_windows_and_text_answers(tmp_path: Path, videos: Videos) -> None:
    csv, gsub = formats.nextgqa(tmp_path)
    videos.add("4882821564.mp4")
    res = load_task("nextgqa", csv, videos.root)  # gsub_val.json found beside val.csv
    first, second = res.items
    assert first.qid == "4882821564_1" and first.answer == "unwrap it" and first.answer_index == 2
    assert first.span == (1.2, 5.8) and first.spans == ((1.2, 5.8), (20.0, 23.5))
    assert second.span is None and res.missing_videos == ["2435100235_7"]
    assert any("without a grounding window" in w for w in res.warnings)
    assert not any("answers given as" in w for w in res.warnings)  # text is NExT-GQA's form
    gsub.rename(tmp_path / "windows.json")
    again = load_task("nextgqa", csv, videos.root, answers=tmp_path / "windows.json")
    assert again.items[0].spans == first.spans


def test_activitynet_qa_sampled_rows(tmp_path: Path, videos: Videos) -> None:
    q, _ = formats.activitynet(tmp_path)
    videos.add("v_TIEzvhv6xaI.mp4", "7X3wPRKuAsU.mkv", "v_-_gDSRlC1kg.webm")
    res = load_task("activitynet-qa", q, videos.root)  # val_a.json found beside val_q.json
    by_id = {i.qid: i for i in res.items}
    assert len(by_id) == 5
    first = by_id["v_TIEzvhv6xaI_2"]
    assert (first.answer, first.style, first.options) == ("yes", "open_ended", None)
    assert first.categories == {"type": "yes/no"}
    assert by_id["v_-_gDSRlC1kg_8"].categories == {"type": "number"}
    assert by_id["v_bDwGZOk7njI_1"].categories == {"type": "motion"}
    assert by_id["v_cjUz6gVQPEs_9"].categories == {"type": "color"}
    assert by_id["v_7X3wPRKuAsU_3"].path == str(videos.root / "7X3wPRKuAsU.mkv")
    assert by_id["v_-_gDSRlC1kg_8"].path == str(videos.root / "v_-_gDSRlC1kg.webm")
    assert res.missing_videos == ["v_bDwGZOk7njI_1", "v_cjUz6gVQPEs_9"]
    assert len(res.skipped) == 1 and "missing" in res.skipped[0]["reason"]
    assert any("duplicate question ids" in w for w in res.warnings)


def test_activitynet_qa_without_answers(tmp_path: Path) -> None:
    q, a = formats.activitynet(tmp_path)
    a.unlink()
    res = load_task("activitynet-qa", q, None)
    assert all(i.answer is None and i.path is None for i in res.items)
    assert any("no answers file" in w for w in res.warnings)
    assert any("no --videos" in w for w in res.warnings)


def test_egoschema_subset_and_full(tmp_path: Path, videos: Videos) -> None:
    path = formats.egoschema(tmp_path)
    videos.add("uid-0.mp4", "uid-1.mp4")
    sub = load_task("egoschema", path, videos.root)
    assert [i.qid for i in sub.items] == ["uid-0", "uid-1", "uid-2"]
    assert [i.answer_index for i in sub.items] == [3, 2, 4]
    assert sub.items[0].answer == "opt 0.3" and sub.items[0].path == str(videos.root / "uid-0.mp4")
    assert sub.missing_videos == ["uid-2"]
    assert any("answers given as text" in w for w in sub.warnings)
    assert sub.skipped[0]["qid"] == "uid-bad"
    full = load_task("egoschema", path, videos.root, split="full")
    assert [i.qid for i in full.items] == ["uid-0", "uid-1", "uid-2", "uid-3"]
    assert full.items[3].answer is None and full.items[3].answer_index is None

"""Small annotation files in each benchmark's published format, written from the documented
fields (NExT-QA and ActivityNet-QA also use rows sampled in `samples`). Each writer plants
the irregularities real files have: duplicates, malformed rows, unknown columns, missing videos.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.evals import samples


def nextqa(root: Path) -> Path:
    """val.csv (sampled rows + a duplicate, a short row, a text answer, an unknown column)
    and map_vid_vidorID.json beside it."""
    lines = samples.NEXTQA_CSV.splitlines()
    header = lines[0] + ",extra_col"
    rows = [line + ",x" for line in lines[1:]]
    rows.append(rows[0])  # duplicate (video, qid)
    rows.append("4010069381,369,640,480,short row,0")  # malformed: too few fields
    rows.append("4010069381,369,640,480,which one,tap their feet,9,CH,a,tap their feet,c,d,e,x")
    path = root / "val.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    (root / "map_vid_vidorID.json").write_text(json.dumps(samples.NEXTQA_MAP))
    return path


def activitynet(root: Path) -> tuple[Path, Path]:
    q = [*samples.ACTIVITYNET_Q, samples.ACTIVITYNET_Q[0], {"video_name": "x", "question": ""}]
    (root / "val_q.json").write_text(json.dumps(q))
    (root / "val_a.json").write_text(json.dumps(samples.ACTIVITYNET_A))
    return root / "val_q.json", root / "val_a.json"


def egoschema(root: Path) -> Path:
    qs = []
    for k in range(4):
        rec = {"q_uid": f"uid-{k}", "google_drive_id": f"g{k}", "question": f"what {k}?"}
        rec.update({f"option {j}": f"opt {k}.{j}" for j in range(5)})
        qs.append(rec)
    qs.append({"q_uid": "uid-bad", "question": "no options"})
    (root / "questions.json").write_text(json.dumps(qs))
    answers = {"uid-0": 3, "uid-1": "2", "uid-2": "opt 2.4", "uid-bad": 1}
    (root / "subset_answers.json").write_text(json.dumps(answers))
    return root / "questions.json"


def videomme_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for k, (vid, dur) in enumerate([("fFjv93ACGo8", "short"), ("zO7tCqQ1bVo", "long")]):
        for j in range(2):
            rows.append(
                {
                    "video_id": f"{k + 1:03d}",
                    "duration": dur,
                    "domain": "Knowledge",
                    "sub_category": "Humanity & History",
                    "url": f"https://youtu.be/{vid}",
                    "videoID": vid,
                    "question_id": f"{k + 1:03d}-{j + 1}",
                    "task_type": "Counting Problem",
                    "question": f"How many {j}?",
                    "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. None."],
                    "answer": "C" if j == 0 else "B",
                }
            )
    return rows


def videomme_template(root: Path) -> Path:
    """The nested layout of Video-MME's output_test_template.json, trailing commas included."""
    text = """[
    {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "questions": [
            {
                "question_id": "001-1",
                "task_type": "Counting Problem",
                "question": "Which kind of the decoration has the largest number?",
                "options": [
                    "A. Apples.",
                    "B. Candles.",
                    "C. Berries.",
                    "D. The three kinds are of the same number."
                ],
                "answer": "C",
                "response": "C. Berries.",
            },
            {
                "question_id": "001-2",
                "task_type": "Information Synopsis",
                "question": "What is the genre of this video, \\"news\\", or not?",
                "options": ["A. News, report.", "B. Documentary.", "C. Vlog.", "D. Tutorial."],
                "answer": "Documentary.",
                "response": "D.",
            },
        ]
    },
]
"""
    path = root / "output_test_template.json"
    path.write_text(text)
    return path


def mlvu(root: Path) -> Path:
    data = [
        {
            "video": "movie101_66.mp4",
            "duration": 246,
            "question": "What color?",
            "candidates": ["Yellow", "Red", "Green", "Blue"],
            "answer": "Yellow",
            "question_type": "plotQA",
        },
        {
            "video": "movie101_66.mp4",
            "duration": 246,
            "question": "Who?",
            "candidates": ["a", "b"],
            "answer": "B",
            "question_type": "plotQA",
        },
        {
            "video": "needle_32.mp4",
            "duration": 467.98,
            "question": "What does the hand do?",
            "candidates": ["Delivers a product", "Shakes hands"],
            "answer": "Delivers a product",
            "question_type": "findNeedle",
        },
        {
            "video": "217.mp4",
            "duration": 480.0,
            "question": "Please summarize this video.",
            "answer": "The video starts with waves.",
            "question_type": "summary",
        },
    ]
    (root / "1_plotQA.json").write_text(json.dumps(data))
    return root / "1_plotQA.json"


def longvideobench(root: Path) -> Path:
    base = {
        "duration_group": 600,
        "question_category": "S2E",
        "duration": 500.0,
        "starting_timestamp_for_subtitles": 0.0,
        "topic_category": "NP-News-Programs",
    }
    data = [
        {
            **base,
            "id": "86CxyhFV9MI_0",
            "video_id": "86CxyhFV9MI",
            "video_path": "86CxyhFV9MI.mp4",
            "subtitle_path": "86CxyhFV9MI_en.json",
            "question": "What is shown first?",
            "candidates": ["a dog", "a cat", "a car", "a tree"],
            "correct_choice": 2,
        },
        {
            **base,
            "id": "86CxyhFV9MI_1",
            "video_id": "86CxyhFV9MI",
            "video_path": "86CxyhFV9MI.mp4",
            "subtitle_path": "86CxyhFV9MI_en.json",
            "question": "Which letter?",
            "option0": "x",
            "option1": "y",
            "option2": "z",
            "option3": None,
            "correct_choice": "B",
        },
        {
            **base,
            "id": "gone_0",
            "video_id": "gone",
            "video_path": "gone.mp4",
            "question": "Missing video?",
            "candidates": ["p", "q"],
            "correct_choice": 0,
        },
    ]
    path = root / "lvb_val.json"
    path.write_text(json.dumps(data))
    return path


def lvbench(root: Path) -> Path:
    q1 = "What year appears in the opening caption?\n(A) 1636\n(B) 1366\n(C) 1363\n(D) 1633"
    lines = [
        {
            "key": "sLxlYWc6Bps",
            "type": "sport",
            "qa": [
                {
                    "uid": "1",
                    "question": q1,
                    "answer": "B",
                    "question_type": ["key information retrieval", "reasoning"],
                    "time_reference": "00:15-00:19",
                },
                {
                    "uid": "2",
                    "question": "Who wins? (A) red (B) blue (C) nobody (D) both",
                    "answer": "(C)",
                    "question_type": "reasoning",
                    "time_reference": "1:02:03-1:02:30",
                },
                {"uid": "3", "question": "No options here", "answer": "A"},
            ],
        },
        {
            "key": "missingvid",
            "qa": [
                {
                    "uid": "4",
                    "question": "Q (A) x (B) y",
                    "answer": "A",
                    "question_type": ["summarization"],
                    "time_reference": "",
                }
            ],
        },
    ]
    path = root / "video_info.meta.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n")
    return path


def charades(root: Path) -> Path:
    text = (
        "3MSZA 24.3 30.4##person turn a light on.\n"
        "3MSZA 0.0 5.0##person opens the door.\n"
        "3MSZA 24.3 30.4##person turn a light on.\n"  # exact duplicate
        "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"
        "bad line without separator\n"
    )
    path = root / "charades_sta_test.txt"
    path.write_text(text)
    return path


def nextgqa(root: Path) -> tuple[Path, Path]:
    csv = (
        "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "4882821564,2697,640,480,why did the boy pick up one present,unwrap it,1,CW,"
        "share with the girl,approach lady sitting there,unwrap it,playing with toy train,"
        "gesture something\n"
        "2435100235,1906,640,480,how does the man sell the watch,show him the watch,7,CH,"
        "give him catalogue,show him a video,show him the watch,dismount his bicycle,"
        "give him the watch strap\n"
    )
    (root / "val.csv").write_text(csv)
    windows = {
        "4882821564": {"duration": 90, "fps": 29.97, "location": {"1": [[1.2, 5.8], [20.0, 23.5]]}}
    }
    (root / "gsub_val.json").write_text(json.dumps(windows))
    return root / "val.csv", root / "gsub_val.json"

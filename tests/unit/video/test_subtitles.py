"""Subtitles: SRT, WebVTT and JSON parsed leniently; lines near looked-at frames; bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidra.errors import InvalidInput
from vidra.video.subtitles import (
    SubtitleLine,
    Subtitles,
    load_subtitles,
    parse_clock,
    parse_srt,
    parse_vtt,
    render,
)

SRT = (
    "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> there\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\n{\\an8}Top line\r\nsecond row\r\n"
    "3\r\n00:00:05,000 --> 00:00:06,000\r\nno blank line before me\r\n\r\n"
    "4\r\n00:00:xx,000 --> 00:00:08,000\r\nbad timing\r\n\r\n"
    "5\r\n00:00:09,000 --> 00:00:08,000\r\nends before it starts\r\n\r\n"
    "6\r\n00:01:00,000 --> 00:01:02,000\r\nA minute &amp; more\r\n"
)

VTT = """WEBVTT - a title

NOTE this is a comment
spanning two lines

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger>Hi <c.yellow>you</c></v>

00:00:03.500 --> 00:00:05.000
<00:00:04.000>karaoke <b>bold</b>
"""


def test_parse_clock() -> None:
    assert parse_clock("01:02:03,500") == 3723.5
    assert parse_clock("02:03.5") == 123.5
    assert parse_clock("63.5") == 63.5
    assert parse_clock(7) == 7.0
    with pytest.raises(ValueError):
        parse_clock("1::2")


def test_srt_markup_bom_crlf_missing_blank_lines_and_bad_cues() -> None:
    subs = parse_srt(SRT)
    assert [ln.text for ln in subs.lines] == [
        "Hello there",
        "Top line second row",
        "no blank line before me",
        "A minute & more",
    ]
    assert subs.lines[0] == SubtitleLine(1.0, 2.5, "Hello there")
    assert subs.lines[-1].start == 60.0
    assert subs.skipped == 2  # unreadable timing, end before start


def test_vtt_header_notes_styles_identifiers_and_cue_settings() -> None:
    subs = parse_vtt(VTT)
    assert subs.lines == [
        SubtitleLine(1.0, 2.0, "Hi you"),
        SubtitleLine(3.5, 5.0, "karaoke bold"),
    ]


def test_json_forms(tmp_path: Path) -> None:
    whisper = {"segments": [{"start": 0.0, "end": 1.5, "text": " hi "}, {"start": 2, "end": 3}]}
    lvb_lines = [{"start": "00:00:01.5", "end": "00:00:03", "line": "from a clock"}]
    lvb_stamps = [{"timestamp": [4.0, None], "text": "open end"}, "junk"]
    for name, data in [("w", whisper), ("a", lvb_lines), ("b", lvb_stamps)]:
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    w = load_subtitles(tmp_path / "w.json")
    assert w.lines == [SubtitleLine(0.0, 1.5, "hi")] and w.skipped == 1
    assert load_subtitles(tmp_path / "a.json").lines == [SubtitleLine(1.5, 3.0, "from a clock")]
    b = load_subtitles(tmp_path / "b.json")
    assert b.lines == [SubtitleLine(4.0, 4.0, "open end")] and b.skipped == 1


def test_suffix_is_sniffed_when_odd(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(VTT)
    assert len(load_subtitles(tmp_path / "x.txt").lines) == 2
    (tmp_path / "y.sub").write_text(SRT)
    assert len(load_subtitles(tmp_path / "y.sub").lines) == 4


def test_near_keeps_close_lines_in_time_order_deduplicated() -> None:
    lines = [SubtitleLine(float(t), float(t) + 1, f"at {t}") for t in range(0, 100, 5)]
    subs = Subtitles([*lines, lines[3]])  # a duplicate cue
    near = subs.near([12.0, 80.0], window_s=4.0)
    assert [ln.text for ln in near] == ["at 10", "at 15", "at 75", "at 80"]
    capped = subs.near([12.0, 80.0], window_s=4.0, max_lines=2)
    assert [ln.text for ln in capped] == ["at 10", "at 80"]  # inside the cue beats 3 s away
    assert subs.near([], window_s=4.0) == []


def test_render() -> None:
    text = render([SubtitleLine(12.0, 15.5, "hello"), SubtitleLine(16, 17.25, "bye")])
    assert text == "[12.0-15.5s] hello\n[16.0-17.2s] bye"


def test_bad_files_name_file_and_line(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[\n{"start": 1, "end": 2, "text": "x"},\n{oops}\n]')
    with pytest.raises(InvalidInput, match=r"bad\.json, line 3"):
        load_subtitles(bad_json)
    shape = tmp_path / "shape.json"
    shape.write_text('{"text": "no cues"}')
    with pytest.raises(InvalidInput, match=r"shape\.json, line 1"):
        load_subtitles(shape)
    garbage = tmp_path / "g.srt"
    garbage.write_text("\n\nthis is not\na subtitle file\n")
    with pytest.raises(InvalidInput, match=r"g\.srt, line 3: no readable subtitle cue"):
        load_subtitles(garbage)
    only_bad = tmp_path / "b.srt"
    only_bad.write_text("1\n00:00:aa --> 00:00:02\ntext\n")
    with pytest.raises(InvalidInput, match=r"b\.srt, line 2"):
        load_subtitles(only_bad)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_subtitles(tmp_path / "absent.srt")
    empty = tmp_path / "empty.srt"
    empty.write_text("")
    assert load_subtitles(empty).lines == []

"""Subtitles and transcripts as timestamped text: SRT, WebVTT and JSON (Whisper, LongVideoBench).

Parses leniently (BOMs, CRLF, missing blank lines, markup, bad cues skipped and counted) and
picks the lines near the frames a model looked at. It does not align, translate or transcribe.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.errors import InvalidInput

__all__ = [
    "SubtitleLine",
    "Subtitles",
    "load_subtitles",
    "parse_clock",
    "parse_json_subtitles",
    "parse_srt",
    "parse_vtt",
    "render",
]

_CLOCK = r"(?:\d+:)?\d{1,2}:\d{1,2}(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_TIMING = re.compile(rf"^\s*({_CLOCK})\s*-->\s*({_CLOCK})(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>")
_ASS = re.compile(r"\{\\[^}]*\}")


@dataclass(frozen=True, order=True)
class SubtitleLine:
    """One cue: ``text`` on screen during ``[start, end]`` seconds."""

    start: float
    end: float
    text: str


@dataclass
class Subtitles:
    """The cues of one file, time-ordered, with how many bad cues were skipped."""

    lines: list[SubtitleLine]
    path: str = ""
    skipped: int = 0
    skipped_at: list[int] = field(default_factory=list)  # 1-based line numbers of bad cues

    def near(
        self, times: Sequence[float], window_s: float = 10.0, max_lines: int = 12
    ) -> list[SubtitleLine]:
        """The cues within ``window_s`` seconds of any of ``times`` (seconds).

        Deduplicated and time-ordered; when more than ``max_lines`` qualify, the ones
        closest to a looked-at time are kept.
        """
        if not times or max_lines <= 0:
            return []
        scored: dict[SubtitleLine, float] = {}
        for line in self.lines:
            gap = min(_gap(line, t) for t in times)
            if gap <= window_s and (line not in scored or gap < scored[line]):
                scored[line] = gap
        kept = sorted(scored, key=lambda ln: (scored[ln], ln.start))[:max_lines]
        return sorted(kept)

    def text(self) -> str:
        """Every cue rendered, one per line."""
        return render(self.lines)


def _gap(line: SubtitleLine, t: float) -> float:
    """Seconds between ``t`` and the cue's interval (0 inside it)."""
    return max(0.0, line.start - t, t - line.end)


def render(lines: Iterable[SubtitleLine]) -> str:
    """Cues as text, one per line: ``[12.0-15.5s] text``."""
    return "\n".join(f"[{ln.start:.1f}-{ln.end:.1f}s] {ln.text}" for ln in lines)


def parse_clock(value: str | float | int) -> float:
    """``"01:02:03,500"``, ``"02:03.5"``, ``"63.5"`` or a number to seconds.

    Raises:
        ValueError: not a time.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace(",", ".")
    parts = text.split(":")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"not a time: {value!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def _clean(text: str) -> str:
    text = _ASS.sub("", _TAG.sub("", text))
    return " ".join(html.unescape(text).split())


def _cues(text: str) -> Subtitles:
    """Shared SRT/VTT cue scanner: a timing line, then text up to a blank line or the next cue."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    out: list[SubtitleLine] = []
    bad: list[int] = []
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        if "-->" not in raw:
            i += 1
            continue
        m = _TIMING.match(raw)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() and not _starts_cue(lines, j):
            body.append(lines[j])
            j += 1
        start = end = -1.0
        if m is not None:
            try:
                start, end = parse_clock(m.group(1)), parse_clock(m.group(2))
            except ValueError:
                m = None
        if m is None or end < start:
            bad.append(i + 1)
        elif body and (cue := _clean(" ".join(body))):
            out.append(SubtitleLine(start, end, cue))
        i = j
    return Subtitles(sorted(out), skipped=len(bad), skipped_at=bad)


def _starts_cue(lines: list[str], j: int) -> bool:
    """A new cue starts at ``j`` without a blank line before it (index line + timing)."""
    here = lines[j].strip()
    if "-->" in here:
        return True
    return here.isdigit() and j + 1 < len(lines) and "-->" in lines[j + 1]


def parse_srt(text: str) -> Subtitles:
    """Parse SubRip text (``1\\n00:00:01,000 --> 00:00:02,500\\ntext``)."""
    return _cues(text)


def parse_vtt(text: str) -> Subtitles:
    """Parse WebVTT text: header, NOTE/STYLE blocks and cue settings are ignored."""
    kept: list[str] = []
    skipping = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n"):
        head = line.strip()
        if not head:
            skipping = False
        elif head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            skipping = True
        kept.append("" if skipping else line)
    return _cues("\n".join(kept))


def parse_json_subtitles(data: Any) -> Subtitles:
    """Parse JSON cues: ``[{start, end, text}]``, ``{"segments": [...]}`` (Whisper), or
    LongVideoBench's ``[{start, end, line}]`` / ``[{timestamp: [s, e], text}]``.

    Raises:
        ValueError: the top level is not a list of cues or a ``segments`` object.
    """
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        data = data["segments"]
    if not isinstance(data, list):
        raise ValueError("expected a list of {start, end, text} or {'segments': [...]}")
    out: list[SubtitleLine] = []
    bad: list[int] = []
    for k, cue in enumerate(data):
        line = _json_cue(cue)
        if line is None:
            bad.append(k + 1)
        elif line.text:
            out.append(line)
    return Subtitles(sorted(out), skipped=len(bad), skipped_at=bad)


def _json_cue(cue: Any) -> SubtitleLine | None:
    if not isinstance(cue, dict):
        return None
    text = cue.get("text", cue.get("line"))
    if "timestamp" in cue and isinstance(cue["timestamp"], list | tuple):
        span = [*cue["timestamp"], None, None]
        start_v, end_v = span[0], span[1]
    else:
        start_v, end_v = cue.get("start"), cue.get("end")
    if not isinstance(text, str) or start_v is None:
        return None
    try:
        start = parse_clock(start_v)
        end = start if end_v is None else parse_clock(end_v)  # Whisper leaves the last open
    except ValueError:
        return None
    if end < start:
        return None
    return SubtitleLine(start, end, _clean(text))


def load_subtitles(path: str | Path) -> Subtitles:
    """Read an ``.srt``, ``.vtt`` or ``.json`` subtitle file (sniffed when the suffix is odd).

    Raises:
        InvalidInput: unreadable, not JSON where JSON was expected, or no cue in a
            non-empty file; the message names the file and the line.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read subtitles ({exc.strerror}); check the path") from exc
    text = _decode(raw)
    kind = _kind(p, text)
    if kind == "json":
        try:
            subs = parse_json_subtitles(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{p}, line {exc.lineno}: not valid JSON ({exc.msg}); fix the file or pass "
                "an .srt/.vtt file"
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"{p}, line 1: {exc}; fix the file's layout") from exc
    else:
        subs = parse_vtt(text) if kind == "vtt" else parse_srt(text)
    if not subs.lines and text.strip():
        line = subs.skipped_at[0] if subs.skipped_at else _first_content_line(text)
        raise InvalidInput(
            f"{p}, line {line}: no readable subtitle cue ({kind} expected, e.g. "
            "'00:00:01,000 --> 00:00:02,000'); fix the timings or convert the file"
        )
    subs.path = str(p)
    return subs


def _decode(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _kind(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".srt", ".vtt", ".json"):
        return suffix[1:]
    head = text.lstrip("\ufeff \n\r\t")
    if head.startswith("WEBVTT"):
        return "vtt"
    return "json" if head[:1] in ("[", "{") else "srt"


def _first_content_line(text: str) -> int:
    for k, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            return k
    return 1

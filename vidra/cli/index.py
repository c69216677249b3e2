"""``vidra index VIDEO`` (build the searchable index, with progress and stats) and
``vidra index search VIDEO TEXT`` (what the selector's search tool would find)."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="build a video's searchable index, or search it",
        description="vidra index VIDEO: caption the video clip by clip into its index (once per "
        "video; resumable). vidra index search VIDEO TEXT: the clips that match TEXT.",
    )
    p.add_argument("video", help="a video file or URL, or 'search'")
    p.add_argument("rest", nargs="*", help="search: VIDEO TEXT...")
    p.add_argument("-k", type=int, default=8, help="search: clips listed with captions (default 8)")
    p.set_defaults(func=cmd_index)


def _build(video: str) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vidra import jobs
    from vidra.config import load_settings
    from vidra.runtime import Runtime, check_settings

    settings = load_settings()
    check_settings(settings)
    with Runtime(settings, executor_ok=False) as rt:
        video_id = jobs.register_video(rt, video)
        bar = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                       console=Console(stderr=True), transient=True)  # fmt: skip
        tid = bar.add_task("index", total=None)
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            bar.update(tid, completed=done, total=total)

        with bar:
            rec = rt.index.ensure(video_id, progress)
        seconds = time.perf_counter() - t0
        info = rt.store.get_video(video_id)
        emb = rt.embedder()
        embedded = (
            f"; {len(rt.store.embedded_clips(rec.id, emb.id))} clips embedded by {emb.id}"
            if emb is not None
            else ""
        )
    print(
        f"{video}: {rec.status} index {rec.id}: {rec.clips_done}/{rec.clips_total} clips of "
        f"{rec.stride_s:g} s over {info.duration:.0f} s, built in {seconds:.1f} s{embedded}"
    )
    if rec.status == "partial":
        from vidra.errors import VideoUnreadable

        raise VideoUnreadable(video, rec.error or "indexing stopped part-way")
    return 0


def _search(video: str, text: str, k: int) -> int:
    from vidra import jobs
    from vidra.agents.findings import SEARCH_K, find_moments, merge_clips, render_clips
    from vidra.agents.findings import render_findings as findings
    from vidra.config import load_settings
    from vidra.runtime import Runtime

    with Runtime(load_settings(), executor_ok=False) as rt:
        video_id = jobs.register_video(rt, video)
        hits = rt.index.search(video_id, text, SEARCH_K)
    print(findings(find_moments(text, hits)))  # what the selector reads
    best = [m for h in hits[:k] for m in merge_clips([h])]
    if best:
        print(f"best {len(best)} clips:\n{render_clips(best, limit=k)}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from vidra.errors import InvalidInput

    if args.video == "search":
        if len(args.rest) < 2:
            raise InvalidInput(
                "vidra index search needs a video and a text: vidra index search V T"
            )
        return _search(args.rest[0], " ".join(args.rest[1:]), args.k)
    if args.rest:
        raise InvalidInput(f"unexpected arguments {args.rest}; see `vidra index --help`")
    return _build(args.video)

"""Remote-source benchmark: 32 uniformly spaced frames of 10-minute videos over loopback HTTP.

Prints JSON (and writes it with --out): bytes transferred, requests and seconds for the
same 32 frames from the local file and from a Range-capable HTTP server on 127.0.0.1
(tests/unit/video/httpd.py; bytes counted as the server sends them), cold (a new URL:
identity, probe and pages fetched afresh) and warm (that URL again: pages from the shared
cache), at three read-ahead caps; local runs are interleaved (best of N). Files (cached in
bench/.cache/, made by bench/decode.py's generator): 640x360 30 fps H.264 with a keyframe
every 8 s, and with one keyframe. Every remote frame must equal the local one exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
BLOCKS = (256 << 10, 1 << 20, 4 << 20)


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@dataclass
class Local:
    """The local reference: its frames, and the best time seen (timed between remote runs)."""

    path: Path
    indices: list[int]
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # [32, h, w, 3]
    seconds: float = float("inf")

    def run(self) -> None:
        from vidra.video import get_decoder

        self.frames, seconds = _timed(lambda: get_decoder("pyav").frames(self.path, self.indices))
        self.seconds = min(self.seconds, seconds)


def bench_http(server: Any, block: int, repeats: int, local: Local) -> dict[str, Any]:
    """Cold (a new URL per repeat) and warm (that URL again) reads, interleaved with local."""
    from vidra.video import RemoteOptions, configure_remote, get_decoder

    configure_remote(RemoteOptions(block_bytes=block))  # also empties the block cache
    reader = get_decoder("pyav")
    cold: list[tuple[float, int, int]] = []
    warm = float("inf")
    correct = True
    for rep in range(repeats):
        local.run()
        url = server.url(local.path.name, query=f"?run={block}-{rep}")  # new identity: cold
        server.reset_counts()
        frames, seconds = _timed(lambda u=url: reader.frames(u, local.indices))
        cold.append((seconds, server.bytes_sent, server.requests))
        correct &= bool(np.array_equal(frames, local.frames))
        server.reset_counts()
        frames, seconds = _timed(lambda u=url: reader.frames(u, local.indices))
        warm = min(warm, seconds)
        correct &= bool(np.array_equal(frames, local.frames)) and server.requests == 0
    seconds, sent, requests = min(cold)
    return {
        "block_bytes": block,
        "cold_seconds": seconds,
        "bytes_transferred": sent,
        "fraction_of_file": round(sent / local.path.stat().st_size, 3),
        "requests": requests,
        "warm_seconds": warm,
        "equal_to_local": correct,
    }


def bench_file(path: Path, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT.parent))  # the repository root: tests' HTTP server
    from decode import N_FRAMES, read_index

    from tests.unit.video.httpd import RangeServer
    from vidra.video import probe, uniform_indices

    info = probe(path)
    local = Local(path, uniform_indices(info.frame_count, N_FRAMES))
    local.run()  # warm the probe and the page cache of the OS
    with RangeServer() as server:
        server.put(path.name, path.read_bytes())
        runs = [bench_http(server, b, repeats, local) for b in BLOCKS]
    for run in runs:
        run["cold_vs_local"] = round(run["cold_seconds"] / local.seconds, 2)
        run["warm_vs_local"] = round(run["warm_seconds"] / local.seconds, 2)
        run["cold_seconds"], run["warm_seconds"] = (
            round(run["cold_seconds"], 3),
            round(run["warm_seconds"], 3),
        )
    return {
        "file": path.name,
        "duration_s": info.duration,
        "keyframes": len(info.keyframe_times()),
        "size_bytes": path.stat().st_size,
        "frames_correct": [read_index(f) for f in local.frames] == local.indices,
        "local_seconds": round(local.seconds, 3),
        "http": runs,
    }


def targets(files: list[dict[str, Any]]) -> dict[str, Any]:
    """What the remote reader promises, per file, at the default 1 MiB block."""
    out: dict[str, Any] = {}
    for f in files:
        default = next(r for r in f["http"] if r["block_bytes"] == 1 << 20)
        name = f["file"]
        out[f"{name}: every HTTP read equals the local frames"] = {
            "met": f["frames_correct"] and all(r["equal_to_local"] for r in f["http"])
        }
        if f["keyframes"] > 1:
            out[f"{name}: 32 frames transfer under half the file"] = {
                "fraction": default["fraction_of_file"],
                "met": default["fraction_of_file"] < 0.5,
            }
        out[f"{name}: a warm re-read is within 1.5x of local"] = {
            "ratio": default["warm_vs_local"],
            "met": default["warm_vs_local"] <= 1.5,
        }
    return out


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from decode import FPS, make_video
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    import av

    CACHE.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    gop = make_video(CACHE / "10min_640x360_30fps_gop8s.mp4", 600, gop=8 * FPS)
    onekey = make_video(CACHE / "10min_640x360_30fps_onekey.mp4", 600, gop=0)
    generated = time.perf_counter() - t0
    files = [bench_file(gop, args.repeats), bench_file(onekey, args.repeats)]
    report = {
        **header("remote", av=av.__version__, numpy=np.__version__),
        "frames_requested": 32,
        "transport": "HTTP/1.1 over loopback (127.0.0.1), keep-alive, Range requests",
        "video_generation_s": round(generated, 1),
        "files": files,
        "targets": targets(files),
    }
    emit(report, args.out)
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

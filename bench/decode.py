"""Decode benchmark: 32 uniformly spaced frames from long videos, every way vidra can and naive.

Prints JSON (and writes it with --out). Generated videos are cached in bench/.cache/.
Files: a 1-hour 640x360 30 fps H.264 video with a keyframe every 8 s, and a 10-minute
one with a single keyframe; both show moving texture (every frame differs) and a
frame-number pattern, so every returned frame is checked for being the one asked for.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
N_FRAMES = 32
BITS = 17
W, H, FPS = 640, 360, 30


def _texture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 216, size=(H // 8 + 2, (W * 2) // 8 + 2)).astype(np.float32)
    big = np.kron(small, np.ones((8, 8), np.float32))  # blocky low-frequency texture
    k = np.ones(9, np.float32) / 9
    big = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, big)
    big = np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, big)
    return big[:H, : W * 2].astype(np.uint8)


def make_video(path: Path, seconds: int, gop: int) -> Path:
    """Write the benchmark video once; later runs reuse it."""
    if path.exists():
        return path
    import av

    from vidra.video.synthetic import VideoWriter

    tex = _texture(seconds)
    n = seconds * FPS
    tmp = path.with_suffix(".part.mp4")
    rows = math.ceil(BITS / 4)
    band = H // 4  # the counter lives in the top quarter
    with VideoWriter(tmp, fps=FPS, width=W, height=H, gop=gop, crf=28) as writer:
        chroma = np.full((H // 2, W), 128, np.uint8)
        for i in range(n):
            off = (i * 3) % W
            y = np.ascontiguousarray(tex[:, off : off + W])
            for b in range(BITS):
                r, c = divmod(b, 4)
                y0, y1 = r * band // rows, (r + 1) * band // rows
                y[y0:y1, c * W // 4 : (c + 1) * W // 4] = 235 if i >> b & 1 else 16
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            writer.write(frame)
    tmp.rename(path)
    return path


def read_index(frame: np.ndarray) -> int:
    """The frame number drawn into the top band of a decoded benchmark frame."""
    h, w = frame.shape[:2]
    band = h // 4
    rows = math.ceil(BITS / 4)
    gray = frame.mean(axis=2)
    value = 0
    for b in range(BITS):
        r, c = divmod(b, 4)
        y0, y1 = r * band // rows, (r + 1) * band // rows
        x0, x1 = c * w // 4, (c + 1) * w // 4
        cell = gray[
            y0 + (y1 - y0) // 4 : y1 - (y1 - y0) // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4
        ]
        if cell.mean() > 127:
            value |= 1 << b
    return value


def naive_seek_per_frame(path: Path, indices: Sequence[int]) -> list[np.ndarray]:
    """What a first attempt does: for each index in the given order, seek and decode to it."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        for i in indices:
            target = round(i / FPS / tb)
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts >= target - 1:
                    out.append(frame.to_ndarray(format="rgb24"))
                    break
    return out


def full_decode(path: Path, indices: Sequence[int]) -> list[np.ndarray]:
    """Decode every frame from the start; keep (convert) only the wanted ones."""
    import av

    wanted = set(indices)
    kept: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for k, frame in enumerate(container.decode(stream)):
            if k in wanted:
                kept[k] = frame.to_ndarray(format="rgb24")
    return [kept[i] for i in indices]


def bench_file(path: Path, repeats: int, full: bool) -> dict[str, object]:
    """Time every method on one file; methods are interleaved per repeat (best of N)."""
    from vidra.video import get_decoder, probe, uniform_indices

    info = probe(path)
    indices = uniform_indices(info.frame_count, N_FRAMES)
    readers = {b: get_decoder(b) for b in ("pyav", "decord", "torchcodec")}
    methods: dict[str, Callable[[], Sequence[np.ndarray]]] = {
        f"vidra:{b}": (lambda r=r: r.frames(path, indices)) for b, r in readers.items()
    }
    methods["naive_pyav_seek_per_frame"] = lambda: naive_seek_per_frame(path, indices)
    best = dict.fromkeys(methods, float("inf"))
    correct = dict.fromkeys(methods, True)
    for rep in range(repeats):
        for name, fn in methods.items():
            gop = info.frame_count / max(1, len(info.keyframe_times()))
            if name.startswith("naive") and gop > 1000 and rep:
                continue  # naive seeking in a one-keyframe file takes ~30 s: once is enough
            t0 = time.perf_counter()
            frames = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            correct[name] &= [read_index(f) for f in frames] == indices
    runs: dict[str, dict[str, object]] = {
        name: {"seconds": round(best[name], 3), "correct": correct[name]} for name in methods
    }
    runs["vidra:pyav"]["frames_decoded_per_returned"] = round(
        readers["pyav"].stats.frames_decoded / readers["pyav"].stats.frames_returned, 1
    )
    if full:
        t0 = time.perf_counter()
        frames = full_decode(path, indices)
        runs["full_decode"] = {
            "seconds": round(time.perf_counter() - t0, 3),
            "correct": [read_index(f) for f in frames] == indices,
            "frames_decoded_per_returned": round(info.frame_count / N_FRAMES, 1),
        }
    return {
        "file": path.name,
        "duration_s": info.duration,
        "frames": info.frame_count,
        "keyframes": len(info.keyframe_times()),
        "size_mb": round(path.stat().st_size / 1e6, 1),
        "runs": runs,
    }


def targets(files: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in files:
        runs = f["runs"]
        assert isinstance(runs, dict)
        default = runs["vidra:pyav"]["seconds"]
        fastest = min(r["seconds"] for k, r in runs.items() if k.startswith("vidra:"))
        name = str(f["file"])
        out[f"{name}: default within 1.2x of fastest backend"] = {
            "ratio": round(default / fastest, 2),
            "met": default <= 1.2 * fastest,
        }
        naive = runs["naive_pyav_seek_per_frame"]["seconds"]
        out[f"{name}: default not slower than naive seek-per-frame"] = {
            "ratio": round(default / naive, 2),
            "met": default <= naive,
        }
        if "full_decode" in runs and f["keyframes"] > 1:  # the target is for the GOP file
            speedup = runs["full_decode"]["seconds"] / default
            out[f"{name}: default >= 10x faster than full decode"] = {
                "speedup": round(speedup, 1),
                "met": speedup >= 10,
            }
        out[f"{name}: every backend returned the right frames"] = {
            "met": all(r["correct"] for r in runs.values())
        }
    return out


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of N (not for full decode)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    import av
    import decord
    import torch
    import torchcodec

    torch.set_num_threads(2)
    CACHE.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    hour = make_video(CACHE / "hour_640x360_30fps_gop8s.mp4", 3600, gop=8 * FPS)
    ten = make_video(CACHE / "10min_640x360_30fps_onekey.mp4", 600, gop=0)
    generated = time.perf_counter() - t0
    files = [bench_file(hour, args.repeats, full=True), bench_file(ten, args.repeats, full=True)]
    report = {
        **header(
            "decode",
            av=av.__version__,
            ffmpeg=".".join(map(str, av.ffmpeg_version_info))
            if isinstance(av.ffmpeg_version_info, tuple)
            else str(av.ffmpeg_version_info),
            decord=decord.__version__,
            torchcodec=torchcodec.__version__,
            torch=torch.__version__,
            numpy=np.__version__,
        ),
        "frames_requested": N_FRAMES,
        "video_generation_s": round(generated, 1),
        "files": files,
        "targets": targets(files),
    }
    emit(report, args.out)
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

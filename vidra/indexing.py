"""Building a video's searchable index: clips at a stride chosen from its length, one frame
per clip captioned by the model's ``captioner`` role, stored in batches (resumable: a killed
build skips the clips already stored), keyed by the video's content and the configuration
so every job and every rollout reuses it. A decode failure part-way leaves a ``partial``
index (searchable) and a clear error.

Where ``index.embedder`` names an image-text encoder, each clip's frame is also embedded
(`embed_index`, resumable the same way); a search then adds, per phrase, the clips whose
frames look most like it, after the clips whose captions match.

`StoreIndex` is the `vidra.agents.search.VideoIndex` the selector's tools use, backed by
the trajectory store's full-text (and vector) search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidra.agents.captioner import CAPTIONER, caption_frames
from vidra.agents.search import Clip
from vidra.config import IndexSettings
from vidra.errors import VideoError
from vidra.models.embedder import ImageTextEmbedder
from vidra.models.protocol import ChatModel, SamplingParams
from vidra.phrases import alternatives
from vidra.storage import ClipHit, IndexRecord, TrajectoryStore, VideoRecord
from vidra.video.decoders import FrameSource

__all__ = ["IndexPlan", "StoreIndex", "build_index", "embed_index", "index_key", "plan_clips"]

log = logging.getLogger(__name__)
IndexProgress = Callable[[int, int], None]
"""``(clips built, clips in all)``."""


@dataclass(frozen=True)
class IndexPlan:
    """The clips of one video: ``(clip_no, t0, t1, frame index)``, and the stride."""

    stride_s: float
    clips: list[tuple[int, float, float, int]]


def plan_clips(duration: float, fps: float, frame_count: int, cfg: IndexSettings) -> IndexPlan:
    """Clips of ``stride`` seconds over the video, each captioned from its middle frame.

    The stride is ``cfg.stride_s``, else the video's length over ``cfg.max_clips``, but never
    under ``cfg.min_stride_s`` (a 2-4 s event always has a captioned frame at 2 s)."""
    stride = cfg.stride_s or max(cfg.min_stride_s, duration / cfg.max_clips)
    n = max(1, math.ceil(duration / stride - 1e-9))
    clips = []
    for k in range(n):
        t0, t1 = k * stride, min(duration, (k + 1) * stride)
        mid = min(frame_count - 1, max(0, int(((t0 + t1) / 2) * fps + 1e-6)))
        clips.append((k, round(t0, 3), round(t1, 3), mid))
    return IndexPlan(stride, clips)


def adapter_fingerprint(path: str | None) -> str:
    """A short hash of an adapter's weights (``base`` for none)."""
    if not path:
        return "base"
    weights = Path(path) / "adapter_model.safetensors"
    data = weights.read_bytes() if weights.is_file() else str(path).encode()
    return hashlib.sha1(data).hexdigest()[:12]


def index_key(model_path: str, captioner: str | None, cfg: IndexSettings) -> dict[str, Any]:
    """What makes two indexes of one video the same: the captioner and how clips are cut."""
    return {
        "model": model_path,
        "captioner": adapter_fingerprint(captioner),
        "stride_s": cfg.stride_s,
        "min_stride_s": cfg.min_stride_s,
        "max_clips": cfg.max_clips,
        "frame_size": cfg.frame_size,
        "prompt": CAPTIONER.version,
    }


def _key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:40]


def build_index(
    store: TrajectoryStore,
    reader: FrameSource,
    model: ChatModel,
    video: VideoRecord,
    cfg: IndexSettings,
    key: dict[str, Any],
    progress: IndexProgress | None = None,
) -> IndexRecord:
    """Build (or finish) the index of ``video``; returns it ``done`` or ``partial``.

    A decode failure part-way marks the index ``partial`` with the error (the clips built
    so far stay searchable) and returns it; the caller decides whether that is fatal.
    """
    plan = plan_clips(video.duration, video.fps, video.frame_count, cfg)
    config = {**key, "stride_used": plan.stride_s}
    rec = store.open_index(video.content_hash, _key(key), config, plan.stride_s, len(plan.clips))
    if rec.status == "done":
        return rec
    have = store.clip_numbers(rec.id)
    todo = [c for c in plan.clips if c[0] not in have]
    sampling = SamplingParams(temperature=0.0, max_tokens=cfg.caption_tokens)
    done = len(have)
    for start in range(0, len(todo), cfg.batch):
        batch = todo[start : start + cfg.batch]
        try:
            frames = reader.frames(video.path, [c[3] for c in batch], size=cfg.frame_size)
        except VideoError as exc:
            error = (
                f"indexing {video.path} stopped at {batch[0][1]:.0f} s of {video.duration:.0f} s "
                f"({exc.cause}); the {done} clips before it are searchable"
            )
            log.error("%s", error)
            store.finish_index(rec.id, "partial", error)
            return store.get_index(rec.id)
        captions = caption_frames(model, frames, [(c[1] + c[2]) / 2 for c in batch], sampling)
        rows = [(n, a, b, cap, [i]) for (n, a, b, i), cap in zip(batch, captions, strict=True)]
        done = store.add_clips(rec.id, rows)
        if progress is not None:
            progress(done, len(plan.clips))
    store.finish_index(rec.id, "done")
    return store.get_index(rec.id)


def embed_index(
    store: TrajectoryStore,
    reader: FrameSource,
    embedder: ImageTextEmbedder,
    video: VideoRecord,
    rec: IndexRecord,
    cfg: IndexSettings,
) -> int:
    """Embed each clip of ``rec`` that has no embedding by ``embedder`` yet (its captioned
    frame, in batches; resumable); returns the clips embedded in all. A decode failure
    part-way stops the pass with an error logged: the clips before it keep their embeddings
    and text search is unaffected."""
    have = store.embedded_clips(rec.id, embedder.id)
    if len(have) >= rec.clips_done:  # every job asks: the common case is one query
        return len(have)
    todo = [h for h in store.clips_between(rec.id, 0.0, math.inf) if h.id not in have]
    done = len(have)
    for start in range(0, len(todo), cfg.batch):
        batch = todo[start : start + cfg.batch]
        try:
            frames = reader.frames(video.path, [h.frames[0] for h in batch], size=cfg.frame_size)
        except VideoError as exc:
            log.error("embedding %s stopped at %.0f s (%s); %d clips are embedded",
                      video.path, batch[0].t0, exc.cause, done)  # fmt: skip
            return done
        vectors = embedder.embed_images(frames)
        done = store.add_embeddings(rec.id, embedder.id, [h.id for h in batch], vectors)
    return done


def _clip(h: ClipHit) -> Clip:
    return Clip(h.id, h.t0, h.t1, h.caption, h.score)


class StoreIndex:
    """The selector's `VideoIndex` over the store: a video id's index is found by its
    content hash and the runtime's index key (built on demand by `ensure`)."""

    def __init__(
        self,
        store: TrajectoryStore,
        reader: FrameSource,
        model: Callable[[], ChatModel],
        cfg: IndexSettings,
        key: Callable[[], dict[str, Any]],
        embedder: Callable[[], ImageTextEmbedder | None] = lambda: None,
    ) -> None:
        self.store, self.reader, self.model, self.cfg, self.key = store, reader, model, cfg, key
        self.embedder = embedder
        self._ids: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def ensure(self, video_id: str, progress: IndexProgress | None = None) -> IndexRecord:
        """The video's index, built first if needed (once per video, even when many jobs
        and rollouts ask at the same time)."""
        with self._lock:
            lock = self._locks.setdefault(video_id, threading.Lock())
        with lock:
            video = self.store.get_video(video_id)
            t0 = time.perf_counter()
            rec = build_index(self.store, self.reader, self.model(), video, self.cfg, self.key(),
                              progress)  # fmt: skip
            embedder = self.embedder()
            if embedder is not None:
                embed_index(self.store, self.reader, embedder, video, rec, self.cfg)
            if rec.clips_done and time.perf_counter() - t0 > 1:
                log.info("indexed %s: %d clips in %.1f s", video.path, rec.clips_done,
                         time.perf_counter() - t0)  # fmt: skip
            self._ids[video_id] = rec.id
            return rec

    def _index_id(self, video_id: str) -> str:
        found = self._ids.get(video_id)
        return found if found is not None else self.ensure(video_id).id

    def search(self, video_id: str, query: str, k: int) -> list[Clip]:
        """Clips whose captions match ``query`` (best first); with an embedder, then for each
        of its phrases the ``embed_k`` clips that look most like it (score: cosine)."""
        index_id = self._index_id(video_id)
        hits = self.store.search_clips(index_id, query, k)
        embedder = self.embedder()
        phrases = alternatives(query)
        if embedder is not None and phrases:
            seen = {h.id for h in hits}
            near = self.store.nearest_clips_many(
                index_id, embedder.id, embedder.embed_texts(phrases), self.cfg.embed_k
            )
            for found in near:
                for h in found:
                    if h.id not in seen and len(hits) < k:
                        seen.add(h.id)
                        hits.append(h)
        return [_clip(h) for h in hits]

    def window(self, video_id: str, t0: float, t1: float) -> list[Clip]:
        return [_clip(h) for h in self.store.clips_between(self._index_id(video_id), t0, t1)]

    def clips(self, ids: Sequence[int]) -> list[Clip]:
        return [_clip(h) for h in self.store.clips(ids)]


def describe(rec: IndexRecord) -> dict[str, Any]:
    """An index record as a plain dict (for the CLI)."""
    return asdict(rec)

"""The store's video index: clips with captions, built once per video content and
configuration, and searched with the database's own full-text engine (SQLite FTS5 with BM25;
PostgreSQL ``tsvector`` with ``ts_rank``), behind one API.

A query matches clips sharing any of its words, ranked by how many and how rare; records are
plain (`ClipHit`), referred to by id. Where an image-text embedder is configured, clips also
carry an image embedding, searched by exact cosine similarity within one index (`nearest_clips`:
one index holds at most ``index.max_clips`` clips, a few MB of vectors, so an approximate
vector index would buy nothing and needs no database extension).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, text, update

from vidra.errors import NotFound
from vidra.phrases import match_rank, terms
from vidra.storage.db import Database
from vidra.storage.ids import new_id
from vidra.storage.orm import IndexClipEmbeddingRow, IndexClipRow, VideoIndexRow, utcnow

__all__ = ["ClipHit", "IndexPart", "IndexRecord"]


@dataclass(frozen=True)
class IndexRecord:
    """A video index: how it was built and how far it got."""

    id: str
    content_hash: str
    config_key: str
    config: dict[str, Any]
    stride_s: float
    clips_total: int
    clips_done: int
    status: str  # building | done | partial (a decode failed part-way)
    error: str | None


@dataclass(frozen=True)
class ClipHit:
    """A clip of an index (as a search hit: with its score; 0.0 outside search)."""

    id: int
    clip_no: int
    t0: float
    t1: float
    caption: str
    frames: list[int]
    score: float = 0.0


def _record(row: Any) -> IndexRecord:
    m = dict(row._mapping)
    return IndexRecord(**{k: m[k] for k in IndexRecord.__dataclass_fields__})


def _hit(row: Any, score: float = 0.0) -> ClipHit:
    return ClipHit(row.id, row.clip_no, row.t0, row.t1, row.caption, list(row.frames), score)


class IndexPart:
    """Video indexes, their clips, and full-text search over the captions."""

    db: Database

    def open_index(
        self, content_hash: str, config_key: str, config: dict[str, Any], stride_s: float,
        clips_total: int,
    ) -> IndexRecord:  # fmt: skip
        """The index of this content and configuration, created (``building``) if new."""
        found = self.find_index(content_hash, config_key)
        if found is not None:
            return found
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_id(),
            "content_hash": content_hash,
            "config_key": config_key,
            "config": config,
            "stride_s": stride_s,
            "clips_total": clips_total,
            "clips_done": 0,
            "status": "building",
            "error": None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.db.write(lambda conn: conn.execute(insert(VideoIndexRow).values(**values)))
        except Exception:  # another process created it at the same moment
            found = self.find_index(content_hash, config_key)
            if found is None:
                raise
            return found
        return IndexRecord(**{k: values[k] for k in IndexRecord.__dataclass_fields__})

    def find_index(self, content_hash: str, config_key: str) -> IndexRecord | None:
        stmt = select(VideoIndexRow).where(
            VideoIndexRow.content_hash == content_hash, VideoIndexRow.config_key == config_key
        )
        row = self.db.read(lambda conn: conn.execute(stmt).first())
        return None if row is None else _record(row)

    def get_index(self, index_id: str) -> IndexRecord:
        row = self.db.read(
            lambda conn: conn.execute(
                select(VideoIndexRow).where(VideoIndexRow.id == index_id)
            ).first()
        )
        if row is None:
            raise NotFound(f"video index {index_id!r} does not exist; build it: vidra index VIDEO")
        return _record(row)

    def indexes(self, content_hash: str | None = None) -> list[IndexRecord]:
        stmt = select(VideoIndexRow).order_by(VideoIndexRow.created_at)
        if content_hash is not None:
            stmt = stmt.where(VideoIndexRow.content_hash == content_hash)
        return [_record(r) for r in self.db.read(lambda conn: conn.execute(stmt).all())]

    def clip_numbers(self, index_id: str) -> set[int]:
        """Clips already built (a resumed build skips them)."""
        stmt = select(IndexClipRow.clip_no).where(IndexClipRow.index_id == index_id)
        return set(self.db.read(lambda conn: list(conn.execute(stmt).scalars())))

    def add_clips(
        self, index_id: str, clips: Sequence[tuple[int, float, float, str, list[int]]]
    ) -> int:
        """Add ``(clip_no, t0, t1, caption, frame indices)`` rows in one transaction (clips
        already there are left as they are); returns the index's clips built so far."""

        def run(conn: Connection) -> int:
            have = set(
                conn.execute(
                    select(IndexClipRow.clip_no).where(
                        IndexClipRow.index_id == index_id,
                        IndexClipRow.clip_no.in_([c[0] for c in clips]),
                    )
                ).scalars()
            )
            rows = [
                {"index_id": index_id, "clip_no": n, "t0": a, "t1": b, "caption": cap,
                 "frames": list(fr)}
                for n, a, b, cap, fr in clips if n not in have
            ]  # fmt: skip
            if rows:
                conn.execute(insert(IndexClipRow), rows)
            done = int(
                conn.execute(select(func.count()).where(IndexClipRow.index_id == index_id)).scalar()
                or 0
            )
            conn.execute(
                update(VideoIndexRow)
                .where(VideoIndexRow.id == index_id)
                .values(clips_done=done, updated_at=utcnow())
            )
            return done

        return self.db.write(run)

    def finish_index(self, index_id: str, status: str, error: str | None = None) -> None:
        stmt = (
            update(VideoIndexRow)
            .where(VideoIndexRow.id == index_id)
            .values(status=status, error=error, updated_at=utcnow())
        )
        self.db.write(lambda conn: conn.execute(stmt))

    def clips_between(self, index_id: str, t0: float, t1: float) -> list[ClipHit]:
        """Clips overlapping ``[t0, t1]`` seconds, in time order."""
        stmt = (
            select(IndexClipRow)
            .where(IndexClipRow.index_id == index_id, IndexClipRow.t1 > t0, IndexClipRow.t0 < t1)
            .order_by(IndexClipRow.t0)
        )
        return [_hit(r) for r in self.db.read(lambda conn: conn.execute(stmt).all())]

    def clips(self, ids: Sequence[int]) -> list[ClipHit]:
        """Clips by id, in time order."""
        stmt = select(IndexClipRow).where(IndexClipRow.id.in_(list(ids))).order_by(IndexClipRow.t0)
        return [_hit(r) for r in self.db.read(lambda conn: conn.execute(stmt).all())]

    def search_clips(self, index_id: str, query: str, k: int = 8) -> list[ClipHit]:
        """The ``k`` clips whose captions best match ``query``, best first: any of its words
        matches; clips containing whole phrases of the query rank first, then more distinct
        words matched, then the database's own score (BM25 on SQLite, ``ts_rank`` on
        PostgreSQL) breaks ties, so both rank alike."""
        words = terms(query)
        if not words or k <= 0:
            return []
        hits = self._matches(index_id, words, max(64, 8 * k))
        for_rank = [(*match_rank(query, h.caption), h.score, h) for h in hits]
        ranked = sorted(for_rank, key=lambda x: (-x[0], -x[1], -x[2], x[3].t0))[:k]
        return [
            ClipHit(h.id, h.clip_no, h.t0, h.t1, h.caption, h.frames,
                    10 * p + n + db / (1 + abs(db)))
            for p, n, db, h in ranked
        ]  # fmt: skip

    def embedded_clips(self, index_id: str, embedder: str) -> set[int]:
        """Ids of the index's clips that have an embedding by ``embedder`` (a resumed
        embedding pass skips them)."""
        stmt = select(IndexClipEmbeddingRow.clip_id).where(
            IndexClipEmbeddingRow.index_id == index_id, IndexClipEmbeddingRow.embedder == embedder
        )
        return set(self.db.read(lambda conn: list(conn.execute(stmt).scalars())))

    def add_embeddings(
        self, index_id: str, embedder: str, clip_ids: Sequence[int], vectors: np.ndarray
    ) -> int:
        """Store one row of ``vectors`` ``[n, d]`` per clip (L2-normalised here; clips that
        already have one are left as they are); returns the index's clips embedded so far."""
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(clip_ids):
            raise ValueError(f"{len(clip_ids)} clips need [{len(clip_ids)}, d] vectors, got "
                             f"{list(vecs.shape)}")  # fmt: skip
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

        def run(conn: Connection) -> int:
            have = set(
                conn.execute(
                    select(IndexClipEmbeddingRow.clip_id).where(
                        IndexClipEmbeddingRow.embedder == embedder,
                        IndexClipEmbeddingRow.clip_id.in_(list(clip_ids)),
                    )
                ).scalars()
            )
            rows = [
                {"clip_id": int(c), "index_id": index_id, "embedder": embedder,
                 "dim": int(v.shape[0]), "vector": v.tobytes()}
                for c, v in zip(clip_ids, vecs, strict=True) if int(c) not in have
            ]  # fmt: skip
            if rows:
                conn.execute(insert(IndexClipEmbeddingRow), rows)
            count = select(func.count()).where(
                IndexClipEmbeddingRow.index_id == index_id,
                IndexClipEmbeddingRow.embedder == embedder,
            )
            return int(conn.execute(count).scalar() or 0)

        return self.db.write(run)

    def nearest_clips(
        self, index_id: str, embedder: str, query: np.ndarray, k: int = 8
    ) -> list[ClipHit]:
        """The ``k`` clips whose embeddings by ``embedder`` are most similar to ``query``
        (cosine; the score), best first; none where the index has no such embeddings."""
        return self.nearest_clips_many(index_id, embedder, np.reshape(query, (1, -1)), k)[0]

    def nearest_clips_many(
        self, index_id: str, embedder: str, queries: np.ndarray, k: int = 8
    ) -> list[list[ClipHit]]:
        """`nearest_clips` for each row of ``queries`` ``[m, d]``, reading the index's
        embeddings and the clips found once for all of them."""
        q = np.asarray(queries, dtype=np.float32)
        if k <= 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        stmt = select(IndexClipEmbeddingRow.clip_id, IndexClipEmbeddingRow.vector).where(
            IndexClipEmbeddingRow.index_id == index_id, IndexClipEmbeddingRow.embedder == embedder
        )
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        if not rows:
            return [[] for _ in range(len(q))]
        mat = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows])
        if mat.shape[1] != q.shape[1]:
            raise ValueError(
                f"the query vector has {q.shape[1]} dimensions but the clips' embeddings by "
                f"{embedder!r} have {mat.shape[1]}; embed the query with the same embedder"
            )
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores = q @ mat.T  # [m, clips]
        best = [np.argsort(-row, kind="stable")[:k] for row in scores]
        by_id = {h.id: h for h in self.clips(sorted({rows[i].clip_id for b in best for i in b}))}
        return [
            [
                ClipHit(h.id, h.clip_no, h.t0, h.t1, h.caption, h.frames, float(row[i]))
                for i in b
                for h in [by_id[rows[i].clip_id]]
            ]
            for row, b in zip(scores, best, strict=True)
        ]

    def _matches(self, index_id: str, words: list[str], k: int) -> list[ClipHit]:
        if self.db.engine.dialect.name == "postgresql":
            sql = text(
                "SELECT id, clip_no, t0, t1, caption, frames, "
                "ts_rank(caption_tsv, to_tsquery('simple', :q)) AS score FROM index_clip "
                "WHERE index_id = :i AND caption_tsv @@ to_tsquery('simple', :q) "
                "ORDER BY score DESC, t0 LIMIT :k"
            )
            params = {"q": " | ".join(words), "i": index_id, "k": k}
        else:
            sql = text(
                "SELECT c.id, c.clip_no, c.t0, c.t1, c.caption, c.frames, "
                "-bm25(index_clip_fts) AS score FROM index_clip_fts "
                "JOIN index_clip c ON c.id = index_clip_fts.rowid "
                "WHERE index_clip_fts MATCH :q AND c.index_id = :i "
                "ORDER BY score DESC, c.t0 LIMIT :k"
            )
            params = {"q": " OR ".join(f'"{t}"' for t in words), "i": index_id, "k": k}
        rows = self.db.read(lambda conn: conn.execute(sql, params).all())
        out = []
        for r in rows:  # raw SQL: JSON comes back as text on SQLite
            frames = r.frames if isinstance(r.frames, list) else json.loads(r.frames)
            out.append(
                ClipHit(r.id, r.clip_no, r.t0, r.t1, r.caption, list(frames), float(r.score))
            )
        return out

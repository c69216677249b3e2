"""The store's videos: registered once per identity (path, size, mtime), content-hashed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from vidra.errors import NotFound
from vidra.storage.db import Database
from vidra.storage.ids import new_id, validate
from vidra.storage.orm import VideoRow, utcnow
from vidra.storage.records import VideoIn, VideoRecord

__all__ = ["VideoPart"]


class VideoPart:
    """Videos: the aggregate every job refers to."""

    db: Database

    def register_video(self, video: VideoIn | dict[str, Any]) -> VideoRecord:
        """Record a video (idempotent for the same path, size and mtime)."""
        v = validate(VideoIn, video, "video")

        def run(conn: Connection) -> VideoRecord:
            row = conn.execute(
                select(VideoRow).where(
                    VideoRow.path == v.path,
                    VideoRow.size == v.size,
                    VideoRow.mtime_ns == v.mtime_ns,
                )
            ).first()
            if row is None:
                values = {"id": new_id(), "created_at": utcnow(), **v.model_dump()}
                conn.execute(insert(VideoRow).values(**values))
                return VideoRecord.model_construct(**values)
            return VideoRecord.model_validate(row._mapping)

        return self.db.write(run)

    def get_video(self, video_id: str) -> VideoRecord:
        row = self.db.read(
            lambda conn: conn.execute(select(VideoRow).where(VideoRow.id == video_id)).first()
        )
        if row is None:
            raise NotFound(f"video {video_id!r} is not in the store; register it first")
        return VideoRecord.model_validate(row._mapping)

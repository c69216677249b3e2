"""SQLAlchemy 2.0 typed ORM of the trajectory store. Nothing outside `vidra.storage` sees these.

Token ids are stored as little-endian int32 bytes and logprobs as float64 bytes, so both
round-trip exactly and compactly; frame references and parsed outputs are JSON.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "EpisodeRow",
    "EvalQuestionRow",
    "EvalRunRow",
    "IndexClipEmbeddingRow",
    "IndexClipRow",
    "JobRow",
    "ModelVersionRow",
    "RewardRow",
    "StepRow",
    "TrainingRunEpisodeRow",
    "TrainingRunRow",
    "VideoIndexRow",
    "VideoRow",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
        bytes: LargeBinary,
    }


class VideoRow(Base):
    __tablename__ = "video"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duration: Mapped[float] = mapped_column(Float)
    fps: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("path", "size", "mtime_ns", name="uq_video_identity"),)


class JobRow(Base):
    __tablename__ = "job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("video.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any] | None] = mapped_column(JSON)
    answer: Mapped[str | None] = mapped_column(Text)
    rollouts: Mapped[int] = mapped_column(Integer, default=1)
    budget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[dict[str, Any]] = mapped_column(default=dict)
    question_key: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    subtitles: Mapped[str | None] = mapped_column(Text, doc="subtitle file shown to agents")
    evidence: Mapped[list[Any] | None] = mapped_column(
        JSON, doc="ground-truth [start, end] spans (rewards only)"
    )
    owner: Mapped[str | None] = mapped_column(String(200), doc="process holding the lease")
    heartbeat_at: Mapped[datetime | None] = mapped_column(doc="the owner's last heartbeat")


class EpisodeRow(Base):
    __tablename__ = "episode"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(64))
    rollout_index: Mapped[int] = mapped_column(Integer)
    question_key: Mapped[str] = mapped_column(String(40))
    answer: Mapped[str | None] = mapped_column(Text)
    choice: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    frames_used: Mapped[int] = mapped_column(Integer)
    rounds: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    thread_id: Mapped[str | None] = mapped_column(String(200))
    worker: Mapped[str | None] = mapped_column(String(200), doc="host:pid or ray:<node>:<pid>")
    n_steps: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("job_id", "rollout_index", name="uq_episode_rollout"),
        Index("ix_episode_question_created", "question_key", "created_at"),
        Index("ix_episode_created", "created_at", "id"),
    )


class StepRow(Base):
    __tablename__ = "step"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    episode_id: Mapped[str] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    step_order: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(64))
    adapter_version: Mapped[str | None] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    frames: Mapped[list[Any]] = mapped_column(JSON)
    completion: Mapped[str] = mapped_column(Text)
    messages: Mapped[Any] = mapped_column(JSON, nullable=True, doc="prompt layout, for replay")
    token_ids: Mapped[bytes] = mapped_column(LargeBinary)
    logprobs: Mapped[bytes] = mapped_column(LargeBinary)
    parsed: Mapped[Any] = mapped_column(JSON, nullable=True)
    parse_ok: Mapped[bool] = mapped_column(Boolean)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_s: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("episode_id", "step_order", name="uq_step_order"),
        Index("ix_step_role_adapter", "role", "adapter_version"),
    )


class RewardRow(Base):
    __tablename__ = "reward"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    episode_id: Mapped[str] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    step_order: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_reward_episode_name", "episode_id", "name"),)


class ModelVersionRow(Base):
    __tablename__ = "model_version"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), index=True)
    registry_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    alias: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    tracking_uri: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str | None] = mapped_column(Text, doc="artifact URI of the adapter")

    __table_args__ = (
        UniqueConstraint("tracking_uri", "registry_name", "version", name="uq_model_version_store"),
    )


class TrainingRunRow(Base):
    __tablename__ = "training_run"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    promotion: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, doc="champions the cycle moves: {state, versions, previous}"
    )


class TrainingRunEpisodeRow(Base):
    """Lineage: which episodes a training run learned from."""

    __tablename__ = "training_run_episode"

    training_run_id: Mapped[str] = mapped_column(
        ForeignKey("training_run.id", ondelete="CASCADE"), primary_key=True
    )
    episode_id: Mapped[str] = mapped_column(
        ForeignKey("episode.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EvalRunRow(Base):
    """One evaluation of a task with one model configuration (resumable by ``key``)."""

    __tablename__ = "eval_run"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class EvalQuestionRow(Base):
    """A question of an evaluation run: the job that answered it and its scores."""

    __tablename__ = "eval_question"

    eval_run_id: Mapped[str] = mapped_column(
        ForeignKey("eval_run.id", ondelete="CASCADE"), primary_key=True
    )
    qid: Mapped[str] = mapped_column(String(400), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("job.id", ondelete="SET NULL"),
        index=True,  # training's NOT EXISTS probe
    )
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


class VideoIndexRow(Base):
    """A video's searchable index: one per content and configuration, built in batches."""

    __tablename__ = "video_index"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    config_key: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stride_s: Mapped[float] = mapped_column(Float)
    clips_total: Mapped[int] = mapped_column(Integer)
    clips_done: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("content_hash", "config_key", name="uq_video_index"),)


class IndexClipRow(Base):
    """One clip of an index: its span, the frames it was captioned from, the caption.

    Full-text search lives beside it (an FTS5 table on SQLite, a generated ``tsvector``
    column on PostgreSQL), made by the migration and read with SQL of its own.
    """

    __tablename__ = "index_clip"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    index_id: Mapped[str] = mapped_column(ForeignKey("video_index.id", ondelete="CASCADE"))
    clip_no: Mapped[int] = mapped_column(Integer)
    t0: Mapped[float] = mapped_column(Float)
    t1: Mapped[float] = mapped_column(Float)
    frames: Mapped[list[Any]] = mapped_column(JSON)
    caption: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("index_id", "clip_no", name="uq_index_clip"),
        Index("ix_index_clip_index_t0", "index_id", "t0"),
    )


class IndexClipEmbeddingRow(Base):
    """A clip's image embedding by one embedder (float32, L2-normalised, as bytes)."""

    __tablename__ = "index_clip_embedding"

    clip_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("index_clip.id", ondelete="CASCADE"),
        primary_key=True,
    )
    index_id: Mapped[str] = mapped_column(ForeignKey("video_index.id", ondelete="CASCADE"))
    embedder: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_index_clip_embedding_index", "index_id", "embedder"),)

"""The trajectory store: SQLAlchemy schema, Alembic migrations, SQLite and PostgreSQL engines.

Returns plain pydantic records; ORM rows never leave this package.
"""

from vidra.storage.index import ClipHit, IndexRecord
from vidra.storage.migrate import check_revision, current_revision, head_revision, upgrade
from vidra.storage.queries import EpisodeFilter
from vidra.storage.records import (
    EpisodeIn,
    EpisodeRecord,
    EvalQuestionRecord,
    EvalRunRecord,
    Group,
    JobCreate,
    JobRecord,
    ModelVersionRecord,
    RewardIn,
    RewardRecord,
    StepIn,
    StepRecord,
    TrainingRunRecord,
    Trajectory,
    VideoIn,
    VideoRecord,
)
from vidra.storage.store import TrajectoryStore, question_key

__all__ = [
    "ClipHit",
    "EpisodeFilter",
    "EpisodeIn",
    "EpisodeRecord",
    "EvalQuestionRecord",
    "EvalRunRecord",
    "Group",
    "IndexRecord",
    "JobCreate",
    "JobRecord",
    "ModelVersionRecord",
    "RewardIn",
    "RewardRecord",
    "StepIn",
    "StepRecord",
    "TrainingRunRecord",
    "Trajectory",
    "TrajectoryStore",
    "VideoIn",
    "VideoRecord",
    "check_revision",
    "current_revision",
    "head_revision",
    "question_key",
    "upgrade",
]

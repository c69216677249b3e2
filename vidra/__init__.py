"""vidra: long-video question answering by a team of agents that learn from their own record.

The public API is re-exported here; ``__all__`` is pinned by a test so changes show in review.
"""

from vidra.api import Answer, Client, Job
from vidra.config import Settings
from vidra.errors import (
    AnnotationError,
    BackendUnavailable,
    ConfigError,
    DatabaseCorrupt,
    DatabaseUnavailable,
    DecodeTimeout,
    DiskFull,
    IllegalTransition,
    InvalidInput,
    JobCancelled,
    JobFailed,
    NotFound,
    NoVideoStream,
    SchemaVersionError,
    StorageError,
    TrackingUnavailable,
    TrainingDiverged,
    VideoError,
    VideoNotFound,
    VideoTooLarge,
    VideoUnreadable,
    VidraError,
)
from vidra.video import VideoInfo, get_decoder, open_reader, probe

__version__ = "0.1.0"

__all__ = [
    "AnnotationError",
    "Answer",
    "BackendUnavailable",
    "Client",
    "ConfigError",
    "DatabaseCorrupt",
    "DatabaseUnavailable",
    "DecodeTimeout",
    "DiskFull",
    "IllegalTransition",
    "InvalidInput",
    "Job",
    "JobCancelled",
    "JobFailed",
    "NoVideoStream",
    "NotFound",
    "SchemaVersionError",
    "Settings",
    "StorageError",
    "TrackingUnavailable",
    "TrainingDiverged",
    "VideoError",
    "VideoInfo",
    "VideoNotFound",
    "VideoTooLarge",
    "VideoUnreadable",
    "VidraError",
    "__version__",
    "get_decoder",
    "open_reader",
    "probe",
]

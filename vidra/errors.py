"""The vidra exception tree: every error a user can cause or fix is a `VidraError`.

Messages name the cause and the fix. Third-party exceptions are wrapped at the
boundary with ``raise ... from exc``; anything that is not a `VidraError` is a bug.

    VidraError
    ├── ConfigError                 bad settings or arguments (fix the value named)
    │   └── InvalidInput            bad user input: question, options, indices, budgets
    │       └── AnnotationError     a benchmark file not in its named format (file, row, fields)
    ├── BackendUnavailable          an optional dependency is missing (pip install 'vidra[extra]')
    ├── NotFound                    an id, file or record that does not exist
    ├── VideoError                  a video file that cannot be used
    │   ├── VideoNotFound           missing path, a directory, or unreadable (also a NotFound)
    │   ├── VideoUnreadable         not a media file, truncated, or corrupt beyond repair
    │   ├── NoVideoStream           a media file without a decodable video stream
    │   ├── VideoTooLarge           over the configured pixel cap and downscaling disabled
    │   └── DecodeTimeout           a decode ran past its deadline
    ├── StorageError                the trajectory store refused or failed an operation
    │   ├── IllegalTransition       a job status change that the state machine forbids
    │   ├── SchemaVersionError      the database is at a revision this vidra does not know
    │   ├── DatabaseUnavailable     the database cannot be reached (down, restarting, network)
    │   ├── DatabaseCorrupt         the database file is damaged (check it: PRAGMA integrity_check)
    │   └── DiskFull                a write failed because the disk is full
    ├── JobFailed                   a job ended failed (names the job and the cause)
    ├── JobCancelled                a job was cancelled (by the user or Ctrl-C)
    ├── TrainingDiverged            a loss became NaN/inf; training stopped at a good checkpoint
    └── TrackingUnavailable         the MLflow tracking server did not answer in time

Programmer errors (a wrong type, a broken invariant) are not `VidraError`s: they keep their
traceback, and the CLI does not turn them into a one-line exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "AnnotationError",
    "BackendUnavailable",
    "ConfigError",
    "DatabaseCorrupt",
    "DatabaseUnavailable",
    "DecodeTimeout",
    "DiskFull",
    "IllegalTransition",
    "InvalidInput",
    "JobCancelled",
    "JobFailed",
    "NoVideoStream",
    "NotFound",
    "SchemaVersionError",
    "StorageError",
    "TrackingUnavailable",
    "TrainingDiverged",
    "VideoError",
    "VideoNotFound",
    "VideoTooLarge",
    "VideoUnreadable",
    "VidraError",
]


class VidraError(Exception):
    """Base of every error vidra raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable whatever a subclass's __init__ takes (Ray ships errors between processes)
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(cls: type[VidraError], args: tuple[Any, ...], state: dict[str, Any]) -> VidraError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ConfigError(VidraError):
    """A setting or argument has a value vidra cannot use."""


class InvalidInput(ConfigError):
    """User input (question, options, indices, budgets) is invalid."""


class AnnotationError(InvalidInput):
    """An annotation file is not in the format of the benchmark it was given for.

    The message is one line: the file, the row (when one is to blame: a number, or a
    name such as ``"header"``), the cause, the fields the format needs, and the fix.
    """

    def __init__(
        self,
        path: str | Path,
        cause: str,
        *,
        row: int | str | None = None,
        expected: tuple[str, ...] | list[str] = (),
        fix: str = "",
    ) -> None:
        where = f"{path}"
        if row is not None:
            where += f", row {row}" if isinstance(row, int) else f", {row}"
        fields = f"; expected fields: {', '.join(expected)}" if expected else ""
        hint = f"; fix: {fix}" if fix else ""
        super().__init__(" ".join(f"{where}: {cause}{fields}{hint}".split()))
        self.path = str(path)
        self.row = row
        self.expected = tuple(expected)


class BackendUnavailable(VidraError):
    """An optional backend's dependency is not installed."""

    def __init__(self, backend: str, extra: str, cause: str = "", fix: str = "") -> None:
        hint = fix or f"pip install 'vidra[{extra}]'"
        detail = f" ({cause})" if cause else ""
        super().__init__(f"backend {backend!r} is not available{detail}; fix: {hint}")
        self.backend = backend
        self.extra = extra


class NotFound(VidraError):
    """Something referred to by id or path does not exist."""


class VideoError(VidraError):
    """A video file cannot be probed or decoded."""

    def __init__(self, path: str | Path, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause


class VideoNotFound(VideoError, NotFound):
    """The path does not exist, is a directory, or cannot be read."""


class VideoUnreadable(VideoError):
    """The file is not a media file, or is truncated or corrupt."""


class NoVideoStream(VideoError):
    """The file has no decodable video stream (audio-only, unsupported codec)."""


class VideoTooLarge(VideoError):
    """The video's frames exceed the configured pixel cap."""


class DecodeTimeout(VideoError):
    """Decoding did not finish before its deadline."""


class StorageError(VidraError):
    """The trajectory store refused or failed an operation."""


class IllegalTransition(StorageError):
    """A job status transition that the job state machine does not allow."""


class SchemaVersionError(StorageError):
    """The database schema is at a revision this version of vidra does not know."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached; work stays resumable and nothing stored is lost."""


class DatabaseCorrupt(StorageError):
    """The database file is damaged beyond what SQLite can read."""


class DiskFull(StorageError):
    """A write failed because the disk (or the database's quota) is full."""


class JobFailed(VidraError):
    """A job ended ``failed``; ``job_id`` and ``cause`` say which and why."""

    def __init__(self, job_id: str, cause: str) -> None:
        super().__init__(f"job {job_id} failed: {cause}")
        self.job_id = job_id
        self.cause = cause


class JobCancelled(VidraError):
    """A job was cancelled (by `Job.cancel`, or Ctrl-C in the CLI) while it ran."""


class TrainingDiverged(VidraError):
    """The loss became NaN/inf; training stopped at the last good checkpoint."""


class TrackingUnavailable(VidraError):
    """The MLflow tracking server did not answer within its bounded timeout."""

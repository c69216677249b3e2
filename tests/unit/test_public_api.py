"""The public API is pinned: a change here is an API change and shows in review."""

import vidra

EXPECTED = [
    "AnnotationError",
    "Answer",
    "DatabaseCorrupt",
    "DatabaseUnavailable",
    "DiskFull",
    "JobCancelled",
    "JobFailed",
    "TrackingUnavailable",
    "TrainingDiverged",
    "BackendUnavailable",
    "Client",
    "ConfigError",
    "DecodeTimeout",
    "IllegalTransition",
    "InvalidInput",
    "Job",
    "NoVideoStream",
    "NotFound",
    "SchemaVersionError",
    "Settings",
    "StorageError",
    "VidraError",
    "VideoError",
    "VideoInfo",
    "VideoNotFound",
    "VideoTooLarge",
    "VideoUnreadable",
    "__version__",
    "get_decoder",
    "open_reader",
    "probe",
]


def test_all_is_pinned() -> None:
    assert sorted(vidra.__all__) == sorted(EXPECTED)
    for name in vidra.__all__:
        assert hasattr(vidra, name), name


def test_every_error_is_a_vidra_error() -> None:
    for name in vidra.__all__:
        obj = getattr(vidra, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, vidra.VidraError), name
    assert issubclass(vidra.VideoNotFound, vidra.NotFound)
    assert issubclass(vidra.InvalidInput, vidra.ConfigError)

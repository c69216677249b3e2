"""The benchmark fixtures of tests/unit/evals, shared here."""

from tests.unit.evals.conftest import clip, videos  # noqa: F401 - fixtures

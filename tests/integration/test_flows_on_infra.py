"""The scripted episode flows again, on a local Ray instance and on PostgreSQL
(store and LangGraph checkpointer): same tests, another ``make_client``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.graph.conftest import world_video  # noqa: F401 - fixture
from tests.unit.graph.test_flows import (  # noqa: F401 - collected here with this module's fixture
    test_budget_exhaustion_finalizes,
    test_cancel,
    test_critic_triggered_revise_round_then_accept,
    test_deadline_expiry,
    test_garbage_at_every_step_still_completes,
    test_max_rounds_bound,
)
from vidra.api import Client
from vidra.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(params=["ray", "postgresql"])
def make_client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Any], Client]]:
    if request.param == "postgresql":
        monkeypatch.setenv("VIDRA_DATABASE_URL", request.getfixturevalue("pg_url"))
        yield lambda model: Client(model=model)
        return
    import ray

    def build(model: Any) -> Client:
        settings = Settings()
        settings.runner.executor = "ray"
        return Client(settings, model=model)

    yield build
    ray.shutdown()

"""The ``traffic_bot`` fixture: a bot on the sandbox LaunchDarkly with a ``[traffic]``
config and a FakeClock. Load with ``pytest_plugins = ["tests.fixtures_traffic"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.sandbox.harness import BotHarness
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.traffic_helpers import OPERATOR_2, toml


@pytest.fixture
async def traffic_bot(tmp_path, start_bot, clock) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """``await traffic_bot(min_soak_minutes=0, ...)`` -> a bot whose [traffic] table holds those keys."""

    async def _start(*, db_name: str = "bot.db", env: dict[str, str] | None = None, **config: Any) -> BotHarness:
        config.setdefault("min_soak_minutes", 0)
        path = tmp_path / f"cio-{db_name}.toml"
        path.write_text(toml(config))
        merged = {"CIO_CONFIG": str(path), "CIO_OPERATORS": f"{SANDBOX_OPERATOR},{OPERATOR_2}", **(env or {})}
        return await start_bot(env=merged, clock=clock, db_name=db_name)

    yield _start



"""The ``timeline_bot`` fixture: a bot with a ``[timeline]`` config, CIO_TIMEZONE=Europe/Berlin
and a FakeClock. Load with ``pytest_plugins = ["tests.fixtures_timeline"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.sandbox.harness import BotHarness
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.timeline_helpers import toml


@pytest.fixture
async def timeline_bot(tmp_path, start_bot, clock) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """``await timeline_bot(heads_up_minutes=10, milestones=[...], env={...})`` -> a BotHarness."""

    async def _start(*, db_name: str = "bot.db", env: dict[str, str] | None = None,
                     milestones: list[dict[str, Any]] | None = None, **config: Any) -> BotHarness:
        path = tmp_path / f"cio-{db_name}.toml"
        path.write_text(toml(config, milestones))
        merged = {"CIO_CONFIG": str(path), "CIO_OPERATORS": SANDBOX_OPERATOR, "CIO_TIMEZONE": "Europe/Berlin",
                  **(env or {})}
        return await start_bot(env=merged, clock=clock, db_name=db_name)

    yield _start

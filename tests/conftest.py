"""Shared fixtures: the sandbox fakes and a real bot on loopback, driven over signed HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.sandbox.harness import BotHarness
from bot.sandbox.world import Sandbox
from bot.secrets import install_log_redaction


@pytest.fixture(autouse=True)
def _redact_logs() -> None:
    install_log_redaction(logging.getLogger())


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(tmp_path, sandbox) -> AsyncIterator[BotHarness]:
    """A bot on the sandbox with the system clock. Use ``start_bot`` for other settings."""
    harness = await BotHarness.start(tmp_path / "bot.db", sandbox=sandbox)
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def start_bot(tmp_path, sandbox) -> AsyncIterator:
    """``await start_bot(env={...}, clock=...)`` -> a running BotHarness (stopped after the test)."""
    started: list[BotHarness] = []

    async def _start(*, env: dict[str, str] | None = None, clock=None, db_name: str = "bot.db") -> BotHarness:
        harness = await BotHarness.start(tmp_path / db_name, env=env, clock=clock, sandbox=sandbox)
        started.append(harness)
        return harness

    yield _start
    for harness in reversed(started):
        await harness.stop()

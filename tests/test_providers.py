"""The retrying HTTP base and the Customer.io client against the sandbox fake, over loopback."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.providers.customerio import customerio_for
from bot.providers.http import ProviderError, ProviderTimeout, RetryPolicy, parse_retry_after


async def _no_sleep(seconds: float) -> None:
    _no_sleep.waits.append(seconds)  # type: ignore[attr-defined]


@pytest.fixture
def cio(sandbox):
    settings = Settings.from_env(sandbox.overlay({}))
    _no_sleep.waits = []  # type: ignore[attr-defined]
    client = customerio_for(settings, timeout=0.5, retry=RetryPolicy(attempts=3, base_delay=0.01))
    client.track._sleep = _no_sleep
    client.app._sleep = _no_sleep
    yield client


async def test_429_then_success_honours_retry_after(cio, sandbox):
    sandbox.customerio.rate_limit("/accounts/region", retry_after=2)
    info = await cio.track.region()
    assert info.environment_id == 101
    assert len(sandbox.customerio.calls("/accounts/region")) == 2
    assert _no_sleep.waits == [2.0]  # type: ignore[attr-defined]
    await cio.aclose()


async def test_5xx_is_retried_then_reported_with_endpoint_and_status(cio, sandbox):
    sandbox.customerio.fail("/v1/sender_identities", status=503, times=None)
    with pytest.raises(ProviderError) as info:
        await cio.app.sender_identities()
    assert info.value.status == 503
    assert info.value.attempts == 3
    assert "Customer.io App API GET /v1/sender_identities failed (HTTP 503 after 3 attempts)" in str(info.value)
    await cio.aclose()


async def test_other_4xx_is_never_retried(cio, sandbox):
    sandbox.customerio.fail("/v1/campaigns", status=404, body={"errors": [{"detail": "not found"}]})
    with pytest.raises(ProviderError) as info:
        await cio.app.campaigns()
    assert info.value.status == 404 and info.value.attempts == 1
    assert len(sandbox.customerio.calls("/v1/campaigns")) == 1
    await cio.aclose()


async def test_hang_on_a_read_is_retried_then_times_out(cio, sandbox):
    sandbox.customerio.fail("/accounts/region", hang=True, times=None)
    with pytest.raises(ProviderTimeout) as info:
        await cio.track.region()
    assert info.value.attempts == 3
    assert "no answer before the timeout" in str(info.value)
    await cio.aclose()


async def test_hang_on_a_write_is_not_retried_and_says_outcome_unknown(cio, sandbox):
    sandbox.customerio.fail("/events", hang=True, times=None)
    with pytest.raises(ProviderTimeout) as info:
        await cio.track.track("launchbot-test-profile", "launch_smoke_test")
    assert info.value.attempts == 1
    assert "outcome is unknown" in str(info.value)
    assert len(sandbox.customerio.calls("/events")) == 1
    await cio.aclose()


async def test_a_server_asking_for_too_long_a_wait_is_reported(cio, sandbox):
    sandbox.customerio.rate_limit("/accounts/region", retry_after=3600)
    with pytest.raises(ProviderError) as info:
        await cio.track.region()
    assert info.value.status == 429 and info.value.retry_after == 3600
    await cio.aclose()


async def test_validation_errors_carry_customerio_words_not_payloads(cio, sandbox):
    with pytest.raises(ProviderError) as info:
        await cio.track.identify("someone", {f"attr{i}": i for i in range(301)})
    assert info.value.status == 400
    assert "too many attributes" in str(info.value)
    assert "attr299" not in str(info.value)
    await cio.aclose()


async def test_paging_follows_next(cio, sandbox):
    sandbox.customerio_prod.sender_identities = [
        {"id": i, "name": f"S{i}", "email": f"s{i}@example.com"} for i in range(120)
    ]
    identities = await cio.app.sender_identities()
    assert [i["id"] for i in identities] == list(range(120))
    assert len(sandbox.customerio.calls("/v1/sender_identities")) == 3
    await cio.aclose()


def test_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Fri, 04 Dec 2026 12:00:10 GMT", now=1796385600.0) == pytest.approx(10.0)

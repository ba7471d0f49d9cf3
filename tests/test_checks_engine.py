"""The engine: concurrency, per-check timeouts, the run deadline, errors, streaming, 429s."""

from __future__ import annotations

import asyncio
import time

from checks.base import CATEGORIES, CheckResult, Severity, Status
from checks.context import CheckContext, Providers
from checks.engine import Check, Engine, UnknownCategory, load_checks, passed, select, verdict
from tests import fixtures_checks as fx

kit = fx.kit  # fixture


def _check(cid: str, func, **kw) -> Check:
    return Check(cid, cid.split(".")[0], cid, kw.pop("severity", Severity.BLOCKING), func, **kw)


async def _sleepy(seconds: float, name: str):
    async def run(ctx: CheckContext, p: Providers):
        await asyncio.sleep(seconds)
        return passed(f"{name} done")
    return run


async def test_checks_run_concurrently_and_stream_in_finish_order():
    slow, fast = await _sleepy(0.3, "slow"), await _sleepy(0.01, "fast")
    engine = Engine([_check("credentials.slow", slow), _check("testing.fast", fast)], timeout=2)
    seen = []
    started = time.perf_counter()
    async for result in engine.stream(CheckContext(), Providers()):
        seen.append(result.id)
    wall = time.perf_counter() - started
    assert seen == ["testing.fast", "credentials.slow"]
    assert wall < 0.5


async def test_a_hanging_check_becomes_error_and_the_rest_completes():
    async def hang(ctx, p):
        await asyncio.sleep(3600)

    async def boom(ctx, p):
        raise RuntimeError("exploded on purpose")

    ok = await _sleepy(0, "ok")
    engine = Engine([_check("credentials.hang", hang), _check("campaigns.boom", boom),
                     _check("testing.ok", ok)], timeout=0.2, deadline=5)
    results = {r.id: r for r in await engine.run(CheckContext(), Providers())}
    assert results["credentials.hang"].status is Status.ERROR
    assert "no answer within 0.2 s" in results["credentials.hang"].summary
    assert results["credentials.hang"].fix
    assert results["campaigns.boom"].status is Status.ERROR
    assert "exploded on purpose" in results["campaigns.boom"].summary
    assert results["testing.ok"].status is Status.PASS
    assert verdict(results.values()) == "no-go"


async def test_the_run_deadline_turns_unfinished_checks_into_errors():
    slow = await _sleepy(5, "slow")
    ok = await _sleepy(0, "ok")
    engine = Engine([_check("credentials.slow", slow, timeout=10), _check("testing.ok", ok)],
                    timeout=10, deadline=0.2)
    started = time.perf_counter()
    results = {r.id: r for r in await engine.run(CheckContext(), Providers())}
    assert time.perf_counter() - started < 1.5
    assert results["credentials.slow"].status is Status.ERROR
    assert "deadline" in results["credentials.slow"].summary
    assert results["testing.ok"].status is Status.PASS


async def test_advisory_failures_do_not_block_and_groups_contribute_many_results():
    async def advisory(ctx, p):
        from checks.engine import failed
        return failed("meh", "do better")

    async def group(ctx, p):
        return [CheckResult(f"deliverability.dns.{n}", "deliverability", f"dns {n}", Status.PASS, "ok")
                for n in range(3)]

    engine = Engine([_check("monitoring.advice", advisory, severity=Severity.ADVISORY),
                     Check("deliverability.dns", "deliverability", "DNS", Severity.BLOCKING, group,
                           planned=3, group=True)])
    assert engine.planned == 4
    results = await engine.run(CheckContext(), Providers())
    assert [r.id for r in results] == ["deliverability.dns.0", "deliverability.dns.1",
                                       "deliverability.dns.2", "monitoring.advice"]
    assert verdict(results) == "go"
    assert all(r.duration_ms >= 0 for r in results)


def test_registry_covers_all_eight_categories_and_unknown_category_is_named():
    registry = load_checks()
    assert {c.category for c in registry.values()} == set(CATEGORIES)
    try:
        select(["credentials", "nonsense"])
    except UnknownCategory as exc:
        assert "nonsense" in str(exc) and all(c in str(exc) for c in CATEGORIES)
    else:
        raise AssertionError("unknown category accepted")


async def test_429_then_success_is_retried(kit):
    service = kit.service()
    kit.cio.rate_limit("/api/v1/accounts/region", retry_after=0, times=1)
    results = await kit.run(service, "credentials")
    assert results["credentials.region"].status is Status.PASS
    assert len(kit.cio.calls("/api/v1/accounts/region")) >= 3  # 429, retry, and staging's lookup


async def test_persistent_429_and_5xx_become_error_with_the_reason(kit):
    service = kit.service()
    kit.cio.fail("/v1/sender_identities", status=429, times=None, headers={"Retry-After": "0"})
    kit.cio.fail("/v1/campaigns$", status=503, times=None)
    results = await kit.run(service, "campaigns", "testing")
    sender = results["campaigns.sender_identity"]
    assert sender.status is Status.ERROR and "429" in sender.summary and "/v1/sender_identities" in sender.summary
    app = results["testing.app_api"]
    assert app.status is Status.ERROR and "503" in app.summary
    assert results["testing.smoke_test"].status is Status.PASS  # the rest completed


async def test_a_hanging_provider_errors_its_checks_and_the_run_completes(kit, tmp_path):
    from tests.fixtures_checks import config_toml

    service = kit.service(toml=config_toml(kit.sandbox.web.url).replace(
        "timeout_seconds = 5", "timeout_seconds = 0.5"))
    kit.cio.fail("/v1/reporting_webhooks", hang=True, times=None)
    started = time.perf_counter()
    results = await kit.run(service)
    assert time.perf_counter() - started < 3
    for cid in ("credentials.app_key", "deliverability.webhooks", "deliverability.webhook_endpoint"):
        assert results[cid].status is Status.ERROR, cid
        assert "no answer within 0.5 s" in results[cid].summary
    assert results["credentials.region"].status is Status.PASS
    assert results["testing.smoke_test"].status is Status.PASS
    assert len(results) == service.engine().planned

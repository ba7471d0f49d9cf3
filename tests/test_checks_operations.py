"""monitoring, testing (smoke test), documentation and rollback."""

from __future__ import annotations

from checks.base import Severity, Status
from checks.context import SMOKE_PREFIX, CheckContext, EscalationTier, Providers
from checks.monitoring import escalation as escalation_check
from checks.monitoring import operators as operators_check
from tests import fixtures_checks as fx

kit = fx.kit  # fixture


# -- monitoring ---------------------------------------------------------------------------------------
async def test_monitoring_passes_with_defaults_channel_and_tiers(kit):
    results = await kit.run(kit.service(), "monitoring")
    assert all(r.status is Status.PASS for r in results.values()), {k: r.summary for k, r in results.items()}
    assert "(defaults)" in results["monitoring.thresholds"].summary
    assert "on-call (+10 min)" in results["monitoring.escalation"].summary


async def test_lax_thresholds_fail_and_unreadable_ones_are_named(kit):
    lax = fx.config_toml(kit.sandbox.web.url, extra='[alerts.thresholds]\nbounce_rate = "25%"\n'
                                                     'complaint_rate = 0.001\napi_p99_latency = "500ms"\n'
                                                     'api_error_rate = 0\n')
    thresholds = (await kit.run(kit.service(toml=lax), "monitoring"))["monitoring.thresholds"]
    assert thresholds.status is Status.FAIL and "bounce rate 25% is too lax" in thresholds.summary
    assert "API error rate 0% never fires" in thresholds.summary
    broken = fx.config_toml(kit.sandbox.web.url, extra='[alerts.thresholds]\nbounce_rate = "lots"\n')
    thresholds = (await kit.run(kit.service(toml=broken), "monitoring"))["monitoring.thresholds"]
    assert thresholds.status is Status.FAIL and "bounce_rate = 'lots'" in thresholds.summary


async def test_configured_sane_thresholds_pass(kit):
    ok = fx.config_toml(kit.sandbox.web.url, extra='[alerts.thresholds]\nbounce_rate = {limit = "3%"}\n')
    thresholds = (await kit.run(kit.service(toml=ok), "monitoring"))["monitoring.thresholds"]
    assert thresholds.status is Status.PASS and "bounce rate > 3%" in thresholds.summary
    assert "(configured)" in thresholds.summary


async def test_launch_channel_missing_or_bot_not_in_it(kit):
    channel = (await kit.run(kit.service({"CIO_LAUNCH_CHANNEL": "C0NOWHERE1"}), "monitoring"))[
        "monitoring.channel"]
    assert channel.status is Status.FAIL and "does not exist" in channel.summary
    kit.sandbox.slack.channels["C0LAUNCH01"]["is_member"] = False
    channel = (await kit.run(kit.service(), "monitoring"))["monitoring.channel"]
    assert channel.status is Status.FAIL and "not a member" in channel.summary and "/invite" in channel.fix


async def test_escalation_paths():
    tiers = (EscalationTier("on-call", 5, ("U1",)),)
    assert (await escalation_check(CheckContext(escalation=tiers), Providers())).status is Status.PASS
    silent = (EscalationTier("on-call", 5, ()),)
    assert (await escalation_check(CheckContext(escalation=silent), Providers())).status is Status.FAIL
    only_ops = await escalation_check(CheckContext(operators=("U0OPERATOR",)), Providers())
    assert only_ops.status is Status.WARN and "[[alerts.escalation]]" in only_ops.fix
    nothing = await escalation_check(CheckContext(), Providers())
    assert nothing.status is Status.FAIL


async def test_operators_named_or_not():
    named = await operators_check(CheckContext(operators=("U0OPERATOR",)), Providers())
    assert named.status is Status.PASS
    none = await operators_check(CheckContext(), Providers())
    assert none.status is Status.WARN and "CIO_OPERATORS" in none.fix


async def test_no_escalation_tiers_in_config_warns(kit):
    toml = fx.config_toml(kit.sandbox.web.url, escalation=False)
    results = await kit.run(kit.service(toml=toml), "monitoring", "documentation")
    assert results["monitoring.escalation"].status is Status.WARN
    assert results["documentation.escalation"].status is Status.PASS  # the URL is still documented


# -- testing --------------------------------------------------------------------------------------------
async def test_smoke_test_uses_a_test_profile_and_removes_it(kit):
    kit.prod.customers["real-customer-1"] = {"email": "ada@example.com"}
    results = await kit.run(kit.service(), "testing")
    smoke = results["testing.smoke_test"]
    assert smoke.status is Status.PASS
    profile = smoke.data["profile"]
    assert profile.startswith(f"{SMOKE_PREFIX}-production-")
    assert set(smoke.data["latency_ms"]) == {"identify", "track", "suppress", "delete"}
    # the only profile touched is the test profile, and it is gone
    touched = {r.path.split("/")[4] for r in kit.cio.calls(r"^/api/v1/customers/")}
    assert touched == {profile}
    assert profile not in kit.prod.customers and profile in kit.prod.deleted and profile in kit.prod.suppressed
    assert kit.prod.customers["real-customer-1"] == {"email": "ada@example.com"}
    event = kit.prod.events[-1]
    assert event["name"] == "launch_smoke_test" and event["customer_id"] == profile
    identify = kit.cio.calls(r"^/api/v1/customers/[^/]+$", "PUT")[0].json()
    assert identify["email"].endswith("@example.invalid") and identify["unsubscribed"] is True
    assert results["testing.app_api"].status is Status.PASS


async def test_smoke_test_event_rejected_still_cleans_up(kit):
    kit.cio.fail(r"/events$", status=400, body={"meta": {"errors": ["event name is invalid"]}})
    smoke = (await kit.run(kit.service(), "testing"))["testing.smoke_test"]
    assert smoke.status is Status.ERROR and "event name is invalid" in smoke.summary
    assert any(cid.startswith(SMOKE_PREFIX) for cid in kit.prod.deleted)
    assert not any(cid.startswith(SMOKE_PREFIX) for cid in kit.prod.customers)


async def test_smoke_test_cleanup_failure_warns_with_the_profile(kit):
    kit.cio.fail(r"/suppress$", status=400)
    smoke = (await kit.run(kit.service(), "testing"))["testing.smoke_test"]
    assert smoke.status is Status.WARN and SMOKE_PREFIX in smoke.fix


async def test_app_api_unreachable_is_an_error(kit):
    kit.cio.fail("/v1/campaigns$", status=500, times=None)
    app = (await kit.run(kit.service(), "testing"))["testing.app_api"]
    assert app.status is Status.ERROR and "HTTP 500" in app.summary


# -- documentation ------------------------------------------------------------------------------------
async def test_documentation_links_answer_2xx(kit):
    kit.sandbox.web.no_head.add("/events")  # HEAD refused: falls back to GET
    results = await kit.run(kit.service(), "documentation")
    assert all(r.status is Status.PASS for r in results.values()), {k: r.summary for k, r in results.items()}
    assert kit.sandbox.web.calls("/events", "GET")


async def test_documentation_link_broken_or_missing(kit):
    kit.sandbox.web.pages["/runbook"] = 404
    kit.sandbox.web.pages["/escalation"] = 403
    results = await kit.run(kit.service(), "documentation")
    assert results["documentation.runbook"].status is Status.FAIL
    assert "HTTP 404" in results["documentation.runbook"].summary
    assert "HTTP 403" in results["documentation.escalation"].summary
    toml = fx.config_toml(kit.sandbox.web.url, documentation=False, escalation=False)
    results = await kit.run(kit.service(toml=toml), "documentation")
    assert results["documentation.runbook"].status is Status.FAIL and "runbook_url" in results[
        "documentation.runbook"].fix
    assert results["documentation.event_catalog"].status is Status.PASS  # the catalog file
    assert results["documentation.escalation"].status is Status.FAIL


async def test_event_catalog_link_broken_or_file_missing(kit):
    kit.sandbox.web.pages["/events"] = 500
    catalog = (await kit.run(kit.service(), "documentation"))["documentation.event_catalog"]
    assert catalog.status is Status.FAIL and "HTTP 500" in catalog.summary
    toml = fx.config_toml(kit.sandbox.web.url, documentation=False, catalog="missing.yaml")
    catalog = (await kit.run(kit.service(toml=toml), "documentation"))["documentation.event_catalog"]
    assert catalog.status is Status.FAIL and "missing.yaml does not exist" in catalog.summary


async def test_documentation_link_not_a_url_or_unreachable(kit):
    toml = fx.config_toml(kit.sandbox.web.url).replace(f'runbook_url = "{kit.sandbox.web.url}/runbook"',
                                                        'runbook_url = "see the wiki"').replace(
        f'escalation_url = "{kit.sandbox.web.url}/escalation"', 'escalation_url = "http://127.0.0.1:9/x"')
    results = await kit.run(kit.service(toml=toml), "documentation")
    assert "not an http(s) URL" in results["documentation.runbook"].summary
    assert results["documentation.escalation"].status is Status.FAIL
    assert "could not reach" in results["documentation.escalation"].summary


# -- rollback ------------------------------------------------------------------------------------------
async def test_rollback_skips_without_launchdarkly(kit):
    service = kit.service()
    service.settings = service.settings.replace(launchdarkly_api_token=None)
    results = await kit.run(service, "rollback")
    for cid in ("rollback.flag_exists", "rollback.flag_boolean", "rollback.kill_switch", "rollback.write_access"):
        assert results[cid].status is Status.SKIP
        assert results[cid].summary == "LaunchDarkly is not configured (set LAUNCHDARKLY_API_TOKEN)"
    assert results["rollback.backup_path"].status is Status.PASS
    assert results["rollback.notification_plan"].status is Status.PASS


async def test_rollback_passes_with_a_boolean_kill_switch(kit):
    ld = fx.FlagDouble()
    results = await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback")
    assert all(r.status is Status.PASS for r in results.values()), {k: r.summary for k, r in results.items()}
    assert ld.patches[0]["instructions"] == [{"kind": "turnFlagOff"}]
    assert ld.patches[0]["env"] == "production" and ld.patches[0]["flag"] == "cio-traffic"


async def test_rollback_flag_missing_or_token_rejected(kit):
    ld = fx.FlagDouble()
    ld.get_error = fx.HTTPStatusError(404)
    results = await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback")
    assert results["rollback.flag_exists"].status is Status.FAIL
    assert "no flag `cio-traffic`" in results["rollback.flag_exists"].summary
    assert results["rollback.kill_switch"].status is Status.SKIP
    ld.get_error = fx.HTTPStatusError(401)
    exists = (await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback"))["rollback.flag_exists"]
    assert exists.status is Status.FAIL and "LAUNCHDARKLY_API_TOKEN" in exists.fix


async def test_rollback_flag_not_boolean_or_off_serves_the_new_path(kit):
    ld = fx.FlagDouble()
    ld.flag["kind"] = "multivariate"
    ld.flag["variations"] = [{"_id": "a", "value": "new"}, {"_id": "b", "value": "old"}]
    results = await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback")
    assert results["rollback.flag_boolean"].status is Status.FAIL
    ld = fx.FlagDouble()
    ld.flag["environments"]["production"]["offVariation"] = 0
    kill = (await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback"))["rollback.kill_switch"]
    assert kill.status is Status.FAIL and "serves True" in kill.summary
    ld.flag["environments"]["production"].pop("offVariation")
    kill = (await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback"))["rollback.kill_switch"]
    assert kill.status is Status.FAIL and "no off variation" in kill.summary


async def test_rollback_token_cannot_write(kit):
    ld = fx.FlagDouble()
    ld.patch_error = fx.HTTPStatusError(403)
    write = (await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback"))["rollback.write_access"]
    assert write.status is Status.FAIL and "Writer role" in write.fix
    ld.patch_error = fx.HTTPStatusError(405)
    write = (await kit.run(kit.service(fx.LD_ENV, launchdarkly=ld), "rollback"))["rollback.write_access"]
    assert write.status is Status.FAIL and "approvals" in write.summary


async def test_rollback_plan_names_missing_and_flag_not_named(kit):
    toml = fx.config_toml(kit.sandbox.web.url, rollback=False)
    service = kit.service(launchdarkly=fx.FlagDouble(), toml=toml)
    service.settings = service.settings.replace(launchdarkly_flag=None)
    results = await kit.run(service, "rollback")
    assert results["rollback.backup_path"].status is Status.FAIL
    assert results["rollback.notification_plan"].status is Status.FAIL
    assert results["rollback.backup_path"].severity is Severity.BLOCKING
    assert results["rollback.flag_exists"].status is Status.FAIL
    assert "LAUNCHDARKLY_FLAG" in results["rollback.flag_exists"].fix


async def test_rollback_against_the_sandbox_launchdarkly(kit):
    """Over real HTTP with the project's LaunchDarkly client and its sandbox fake (both from
    the traffic domain; skipped in a build without them)."""
    import pytest

    pytest.importorskip("bot.providers.launchdarkly")
    fake_module = pytest.importorskip("bot.sandbox.launchdarkly")
    import copy

    fake = kit.sandbox.launchdarkly
    before = copy.deepcopy(fake.flag(fake_module.SANDBOX_LD_FLAG))
    service = kit.service()  # the sandbox overlay names the fake's token, project, flag and URL
    results = await kit.run(service, "rollback")
    assert all(r.status is Status.PASS for r in results.values()), {k: r.summary for k, r in results.items()}
    patches = fake.calls("/api/v2/flags/", "PATCH")
    assert patches and patches[0].query.get("dryRun") == "true"
    assert patches[0].json()["instructions"] == [{"kind": "turnFlagOff"}]
    assert fake.flag(fake_module.SANDBOX_LD_FLAG) == before  # a dry run changes nothing

    service.settings = service.settings.replace(launchdarkly_flag="no-such-flag")
    exists = (await kit.run(service, "rollback"))["rollback.flag_exists"]
    assert exists.status is Status.FAIL and "no flag `no-such-flag`" in exists.summary


async def test_smoke_test_identify_failure_still_removes_whatever_landed(kit):
    kit.cio.fail(r"^/api/v1/customers/[^/]+$", method="PUT", status=400,
                 body={"meta": {"errors": ["attribute rejected"]}})
    smoke = (await kit.run(kit.service(), "testing"))["testing.smoke_test"]
    assert smoke.status is Status.ERROR and "attribute rejected" in smoke.summary
    deleted = [c for c in kit.prod.deleted if c.startswith(SMOKE_PREFIX)]
    assert len(deleted) == 1 and not kit.cio.calls("/events$")

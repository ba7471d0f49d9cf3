"""integration: the event catalog audit, YAML and JSON."""

from __future__ import annotations

import copy

from checks.base import Status
from tests import fixtures_checks as fx
from tests.fixtures_checks import GOOD_CATALOG

kit = fx.kit  # fixture


def catalog(**changes):
    data = copy.deepcopy(GOOD_CATALOG)
    data.update(changes)
    return data


async def _run(kit, cat, name="events.yaml"):
    return await kit.run(kit.service(catalog=cat, catalog_name=name), "integration")


async def test_a_good_catalog_passes_every_check(kit):
    results = await _run(kit, GOOD_CATALOG)
    assert len(results) == 8
    assert all(r.status is Status.PASS for r in results.values()), {k: v.summary for k, v in results.items()}
    assert "2 event(s) and 1 identify sample(s)" in results["integration.catalog"].summary


async def test_json_catalog_is_read_too(kit):
    results = await _run(kit, GOOD_CATALOG, "events.json")
    assert results["integration.catalog"].status is Status.PASS


async def test_missing_catalog_configuration_fails_and_the_rest_skip(kit):
    from tests.fixtures_checks import config_toml

    toml = config_toml(kit.sandbox.web.url).replace('event_catalog = "events.yaml"\n', "")
    results = await kit.run(kit.service(toml=toml), "integration")
    assert results["integration.catalog"].status is Status.FAIL
    assert "[checks] event_catalog" in results["integration.catalog"].fix
    assert results["integration.timestamps"].status is Status.SKIP


async def test_unreadable_catalog_fails_with_the_reason(kit):
    results = await _run(kit, "identify: [unclosed\n")
    assert results["integration.catalog"].status is Status.FAIL
    assert "not valid YAML" in results["integration.catalog"].summary
    assert results["integration.event_names"].status is Status.SKIP


async def test_millisecond_and_iso_timestamps_are_caught(kit):
    data = catalog(events=[
        {"name": "order_completed", "timestamp": 1764547200123, "data": {}},
        {"name": "cart_viewed", "timestamp": "2026-12-01T12:00:00Z", "data": {"viewed_at": 1764547200}},
        {"name": "signed_up", "timestamp": 1764547200, "data": {"confirmed_at": "2026-12-01"}},
    ])
    data["identify"][0]["attributes"]["created_at"] = 1764547200000
    ts = (await _run(kit, data))["integration.timestamps"]
    assert ts.status is Status.FAIL
    assert "event #1 `order_completed`: timestamp 1764547200123 is in milliseconds" in ts.summary
    assert "ISO date string" in ts.summary and "data.confirmed_at" in ts.summary
    assert "created_at 1764547200000 is in milliseconds" in ts.detail
    assert "divide milliseconds by 1000" in ts.fix


async def test_event_names_must_be_snake_case_and_short(kit):
    data = catalog(events=[{"name": "OrderCompleted"}, {"name": "x" * 101}, {"name": "ok_name"}, {"data": {}}])
    names = (await _run(kit, data))["integration.event_names"]
    assert names.status is Status.FAIL
    assert "`OrderCompleted`: not snake_case" in names.summary
    assert "101 bytes (max 100)" in names.summary and "no name" in names.summary
    assert "ok_name" not in names.summary


async def test_personal_data_in_event_names_is_caught(kit):
    data = catalog(events=[{"name": "signup_ada@example.com"}, {"name": "called_4155550123"},
                           {"name": "order_2026_completed"}])
    pii = (await _run(kit, data))["integration.event_name_pii"]
    assert pii.status is Status.FAIL
    assert "email address" in pii.summary and "phone number" in pii.summary
    assert "order_2026_completed" not in pii.summary


async def test_identify_without_email_fails(kit):
    data = catalog(identify=[{"id": "u1", "attributes": {"plan": "pro"}},
                             {"id": "u2", "email": "b@example.com"}])
    email = (await _run(kit, data))["integration.identify_email"]
    assert email.status is Status.FAIL and "identify #1 (u1)" in email.summary
    assert "u2" not in email.summary


async def test_attribute_limits(kit):
    attrs = {f"attr_{n}": n for n in range(301)}
    attrs["email"] = "a@example.com"
    attrs["n" * 151] = 1
    attrs["bio"] = "y" * 1001
    data = catalog(identify=[{"id": "u" * 151, "attributes": attrs}])
    limits = (await _run(kit, data))["integration.attribute_limits"]
    assert limits.status is Status.FAIL
    for text in ("id is 151 bytes", "304 attributes (max 300", "is 151 bytes (max 150)", "`bio` is 1001 bytes"):
        assert text in limits.detail, text
    assert limits.summary.startswith("4 attribute limit(s) exceeded") and "and 1 more" in limits.summary


async def test_event_data_over_100kb_fails(kit):
    data = catalog(events=[{"name": "big_event", "timestamp": 1764547200, "data": {"blob": "z" * 100_001}}])
    size = (await _run(kit, data))["integration.event_size"]
    assert size.status is Status.FAIL and "big_event" in size.summary and "100,012 bytes" in size.summary


async def test_reserved_attributes_misused(kit):
    data = catalog(identify=[{"id": "u1", "attributes": {"email": "not-an-email", "cio_id": "abc", "id": "u2",
                                                          "unsubscribed": "no", "created_at": [1]}}],
                   events=[{"name": "ok_event", "timestamp": 1764547200, "data": {"cio_id": 1}}])
    reserved = (await _run(kit, data))["integration.reserved_attributes"]
    assert reserved.status is Status.FAIL
    for text in ("sets `cio_id`", "`id` differs", "`email` is not an email", "`unsubscribed` must be",
                 "`created_at` must be", "data sets reserved `cio_id`"):
        assert text in reserved.detail, text
    assert "6 reserved attribute(s) misused" in reserved.summary

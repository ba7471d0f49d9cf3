"""Customer.io webhook intake over real HTTP: signatures, time window, dedup, refusals."""

from __future__ import annotations

import json

import pytest

from tests.fixtures_alerts import cio_event, cio_headers, post_cio


@pytest.fixture
async def abot(start_bot, clock):
    return await start_bot(clock=clock)


async def test_signed_webhook_is_counted_once_across_retries(abot):
    event = cio_event("sent", ts=abot.services.clock.timestamp())
    first = await post_cio(abot, event)
    assert first == (200, {"status": "counted"})
    # Customer.io retries with a fresh timestamp and signature: same event id, counted once
    for _ in range(3):
        abot.services.clock.advance(30)
        status, body = await post_cio(abot, event)
        assert status == 200 and body["status"] == "duplicate"
    repo = abot.store.alerts
    assert repo.counted_events() == 1
    assert repo.counter_total("email_sent") == 1
    assert repo.has_event(event["event_id"])


async def test_concurrent_duplicates_in_one_batch_count_once(abot):
    import asyncio

    now = abot.services.clock.timestamp()
    event = cio_event("bounced", ts=now)
    others = [cio_event("sent", ts=now) for _ in range(40)]
    results = await asyncio.gather(*(post_cio(abot, e) for e in [event] * 10 + others))
    assert all(status == 200 for status, _ in results)
    assert sum(1 for _, body in results[:10] if body["status"] == "counted") == 1
    repo = abot.store.alerts
    assert repo.counter_total("email_bounced") == 1
    assert repo.counter_total("email_sent") == 40
    # counters are per minute, not per event
    rows = abot.store.query("SELECT * FROM metric_counts")
    assert {(r["metric"], r["count"]) for r in rows} == {("email_bounced", 1), ("email_sent", 40)}


async def test_bad_and_stale_signatures_are_refused_and_nothing_counted(abot):
    now = abot.services.clock.timestamp()
    event = cio_event("bounced", ts=now)
    body = json.dumps(event).encode()

    status, answer = await post_cio(abot, event, key="not-the-signing-key")
    assert status == 401 and "X-CIO-Signature does not match" in answer["error"]

    status, answer = await post_cio(abot, event, ts=now - 301)
    assert status == 401 and "5 minutes" in answer["error"]
    status, answer = await post_cio(abot, event, ts=now + 301)
    assert status == 401 and "5 minutes" in answer["error"]

    # a signature of other content (the body was altered in transit)
    headers = cio_headers(abot.sandbox.webhook_signing_key, body + b" ", now)
    status, answer = await post_cio(abot, body, headers=headers)
    assert status == 401

    status, answer = await post_cio(abot, body, headers={"Content-Type": "application/json"})
    assert status == 401 and "Missing" in answer["error"]

    headers = cio_headers(abot.sandbox.webhook_signing_key, body, now)
    headers["X-CIO-Timestamp"] = "yesterday"
    status, answer = await post_cio(abot, body, headers=headers)
    assert status == 401 and "Unix seconds" in answer["error"]

    headers = cio_headers(abot.sandbox.webhook_signing_key, body, now)
    headers["X-CIO-Signature"] = "é" * 64  # not even hex
    status, answer = await post_cio(abot, body, headers={k: v.encode().decode("latin-1") for k, v in headers.items()})
    assert status == 401

    # inside the window, right key: accepted (the refusals above were about the signature)
    status, _ = await post_cio(abot, event, ts=now - 299)
    assert status == 200
    assert abot.store.alerts.counted_events() == 1
    assert abot.store.alerts.counter_total() == 1
    secret = abot.sandbox.webhook_signing_key
    assert all(secret not in json.dumps(r) for r in abot.store.audit.recent(50))


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (json.dumps({"object_type": "email", "metric": "sent", "timestamp": 1}).encode(), 422, "event_id"),
        (json.dumps({"event_id": "e1", "object_type": "email", "metric": "exploded"}).encode(), 422,
         "Unknown metric"),
        (json.dumps({"event_id": "e2", "object_type": "carrier_pigeon", "metric": "sent"}).encode(), 422,
         "Unknown object_type"),
        (json.dumps({"event_id": "e3", "object_type": "email", "metric": None}).encode(), 422, "Unknown metric"),
    ],
)
async def test_malformed_and_unknown_events_get_a_4xx_reason_and_nothing_is_counted(abot, body, status, reason):
    got, answer = await post_cio(abot, body)
    assert got == status and reason in answer["error"]
    assert abot.store.alerts.counted_events() == 0
    assert abot.store.alerts.counter_total() == 0


async def test_oversized_body_is_refused(abot):
    event = cio_event("sent", ts=abot.services.clock.timestamp())
    event["data"]["padding"] = "x" * (300 * 1024)
    status, answer = await post_cio(abot, event)
    assert status == 413 and "larger than" in answer["error"]
    assert abot.store.alerts.counted_events() == 0


async def test_other_channels_metrics_are_counted_under_their_own_key(abot):
    now = abot.services.clock.timestamp()
    assert (await post_cio(abot, cio_event("delivered", ts=now, object_type="sms")))[0] == 200
    assert (await post_cio(abot, cio_event("subscribed", ts=now, object_type="customer")))[0] == 200
    assert abot.store.alerts.counter_total("sms_delivered") == 1
    assert abot.store.alerts.counter_total("customer_subscribed") == 1
    assert abot.store.alerts.counter_total("email_delivered") == 0


async def test_intake_without_signing_key_refuses_with_the_fix(start_bot, clock):
    bot = await start_bot(clock=clock, env={"CUSTOMERIO_WEBHOOK_SIGNING_KEY": " "})
    status, answer = await post_cio(bot, cio_event("sent", ts=clock.timestamp()), key="anything")
    assert status == 503 and "CUSTOMERIO_WEBHOOK_SIGNING_KEY" in answer["error"]


async def test_an_event_that_cannot_be_stored_gets_503_and_counts_once_on_retry(abot):
    event = cio_event("bounced", ts=abot.services.clock.timestamp())
    with abot.store.transaction() as conn:  # the store breaks under the intake
        conn.execute("ALTER TABLE webhook_events RENAME TO webhook_events_away")
    status, answer = await post_cio(abot, event)
    assert status == 503 and "retry later" in answer["error"]
    assert abot.store.alerts.counter_total() == 0, "nothing counted when the id could not be stored"
    with abot.store.transaction() as conn:
        conn.execute("ALTER TABLE webhook_events_away RENAME TO webhook_events")
    assert (await post_cio(abot, event)) == (200, {"status": "counted"})
    assert abot.store.alerts.counter_total("email_bounced") == 1

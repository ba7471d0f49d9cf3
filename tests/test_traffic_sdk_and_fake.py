"""The flag the bot leaves behind, evaluated by the real LaunchDarkly SDK; the sandbox
LaunchDarkly's strictness; restart safety of confirmations and locks."""

from __future__ import annotations

import asyncio
import copy
import json

import httpx
import pytest

from bot.flageval import evaluate, sample_keys, tolerance
from bot.sandbox.launchdarkly import (
    SANDBOX_LD_ENVIRONMENT,
    SANDBOX_LD_FLAG,
    SANDBOX_LD_PROJECT,
    SANDBOX_LD_SDK_KEY,
    SANDBOX_LD_TOKEN,
    FakeLaunchDarkly,
)
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.process_helpers import OTHER_HOST_OWNER, dead_owner
from tests.traffic_helpers import ld_of, patches, proposal, ramp

pytest_plugins = ["tests.fixtures_traffic"]

SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"


async def test_real_sdk_serves_the_ramped_fraction_and_keeps_early_contexts(traffic_bot):
    bot = await traffic_bot()
    keys = sample_keys(20_000, prefix="customer")
    served: dict[int, set[str]] = {}
    for pct in (10, 50, 100):
        await ramp(bot, pct)
        flag = copy.deepcopy(ld_of(bot).flag())  # the flag JSON as LaunchDarkly holds it
        values = evaluate(flag, SANDBOX_LD_ENVIRONMENT, keys)
        served[pct] = {k for k, v in zip(keys, values, strict=True) if v is True}
        fraction = len(served[pct]) / len(keys)
        assert abs(fraction - pct / 100) <= tolerance(pct / 100, len(keys), 4.0), (pct, fraction)
    assert served[100] == set(keys)
    assert served[10] <= served[50], "every context served true at 10% must be served true at 50%"
    assert served[50] <= served[100]


async def test_sdk_evaluation_of_an_off_flag_serves_the_off_variation():
    fake = FakeLaunchDarkly()
    flag = fake.flag()
    assert set(evaluate(flag, SANDBOX_LD_ENVIRONMENT, sample_keys(50))) == {False}
    fake.set_rollout(100, on=False)
    assert set(evaluate(fake.flag(), SANDBOX_LD_ENVIRONMENT, sample_keys(50))) == {False}


# -- the fake is as strict as the real API ------------------------------------------------------
@pytest.fixture
async def ld():
    async with FakeLaunchDarkly() as fake:
        async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": SANDBOX_LD_TOKEN}) as client:
            fake.client = client  # type: ignore[attr-defined]
            yield fake


PATH = f"/api/v2/flags/{SANDBOX_LD_PROJECT}/{SANDBOX_LD_FLAG}"


def weights(fake: FakeLaunchDarkly, true_weight: int) -> dict[str, int]:
    ids = {v["value"]: v["_id"] for v in fake.flag()["variations"]}
    return {ids[True]: true_weight, ids[False]: 100_000 - true_weight}


async def _patch(fake, body, *, content_type=SEMANTIC, query="", headers=None):
    return await fake.client.patch(PATH + query, content=json.dumps(body),
                                   headers={"Content-Type": content_type, **(headers or {})})


async def test_fake_needs_the_token_without_bearer(ld):
    ok = await ld.client.get(PATH, params={"env": "production"})
    assert ok.status_code == 200 and set(ok.json()["environments"]) == {"production"}
    bearer = await ld.client.get(PATH, headers={"Authorization": f"Bearer {SANDBOX_LD_TOKEN}"})
    assert bearer.status_code == 401 and bearer.json()["code"] == "unauthorized"
    missing = await ld.client.get(f"/api/v2/flags/{SANDBOX_LD_PROJECT}/other")
    assert missing.status_code == 404 and "message" in missing.json()


async def test_fake_reads_plain_json_as_json_patch_and_refuses_an_object(ld):
    body = {"environmentKey": "production", "instructions": [{"kind": "turnFlagOn"}]}
    plain = await _patch(ld, body, content_type="application/json")
    assert plain.status_code == 400 and "JSON patch" in plain.json()["message"]
    assert ld.env()["on"] is False


@pytest.mark.parametrize("body, message", [
    ({"instructions": [{"kind": "turnFlagOn"}]}, "environmentKey is required"),
    ({"environmentKey": "nope", "instructions": [{"kind": "turnFlagOn"}]}, "Unknown environment"),
    ({"environmentKey": "production", "instructions": []}, "non-empty"),
    ({"environmentKey": "production", "instructions": [{"kind": "flipFlag"}]}, "Unknown instruction kind"),
    ({"environmentKey": "production", "instructions": [
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": {"not-an-id": 100000}}]},
     "Unknown variation ID"),
])
async def test_fake_rejects_invalid_semantic_patches(ld, body, message):
    answer = await _patch(ld, body)
    assert answer.status_code == 400
    assert set(answer.json()) >= {"code", "message"} and message in answer.json()["message"]


async def test_fake_checks_weights_sum_and_applies_all_or_nothing(ld):
    bad_sum = {k: v // 2 for k, v in weights(ld, 50_000).items()}
    answer = await _patch(ld, {"environmentKey": "production", "instructions": [
        {"kind": "turnFlagOn"},
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": bad_sum}]})
    assert answer.status_code == 400 and "sum to 100000" in answer.json()["message"]
    assert ld.env()["on"] is False and ld.env()["version"] == 1, "the valid turnFlagOn was not applied either"


async def test_fake_dry_run_validates_without_applying_and_versions_increment(ld):
    body = {"environmentKey": "production", "comment": "test", "instructions": [
        {"kind": "turnFlagOn"},
        {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": weights(ld, 30_000),
         "rolloutBucketBy": "key", "rolloutContextKind": "user"}]}
    dry = await _patch(ld, body, query="?dryRun=true")
    assert dry.status_code == 200 and dry.json()["environments"]["production"]["on"] is True
    assert ld.env()["on"] is False and ld.env()["version"] == 1
    real = await _patch(ld, body)
    assert real.status_code == 200
    assert ld.env()["version"] == 2 and ld.flag()["_version"] == 2 and ld.served_weight() == 30_000
    rollout = ld.env()["fallthrough"]["rollout"]
    assert [v["variation"] for v in rollout["variations"]] == [0, 1]


async def test_fake_can_require_approval(ld):
    ld.require_approval()
    answer = await _patch(ld, {"environmentKey": "production", "instructions": [{"kind": "turnFlagOff"}]})
    assert answer.status_code == 405 and "approval" in answer.json()["message"]


# -- restart safety ------------------------------------------------------------------------------------
async def test_a_confirmation_survives_a_restart(traffic_bot):
    first = await traffic_bot()
    shown = proposal(await first.command("/cio ramp 10"))
    await first.stop()
    second = await traffic_bot()
    clicked = await second.click(shown, "traffic_confirm")
    assert "Verified" in clicked.text
    again = await second.click(shown, "traffic_confirm")
    assert "already confirmed" in again.text
    assert len(patches(second)) == 1


async def _until(predicate, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if value := predicate():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def _leave_a_change_in_flight(bot, clock, boot_id: str, *, ttl: float = 10) -> int:
    """What a process stopped in the middle of a ramp to 10% leaves in the database."""
    repo = bot.store.traffic
    bot.store.launches.ensure(bot.channel, SANDBOX_OPERATOR)
    change = repo.start_change(launch_id=1, kind="ramp", requested_by=SANDBOX_OPERATOR, confirmed_by=SANDBOX_OPERATOR,
                               reason="", forced=False, trigger="button", from_pct=0, to_pct=10,
                               before={"version": 1}, channel_id=bot.channel, requested_at=None,
                               started_at="2026-12-01T12:00:00+00:00")
    assert repo.acquire_lock(1, holder=SANDBOX_OPERATOR, what="ramp to 10%", boot_id=boot_id,
                             now_ts=clock.timestamp(), at="2026-12-01T12:00:00+00:00", ttl=ttl) is None
    repo.attach_lock(1, change, boot_id)
    return change


def _notices(sandbox) -> list:
    return [m for m in sandbox.slack.channel_messages() if "stopped in the middle of a traffic change" in m.text]


async def test_a_lock_left_by_a_killed_process_is_released_and_its_change_marked_interrupted(
        traffic_bot, sandbox, clock):
    first = await traffic_bot()
    change = _leave_a_change_in_flight(first, clock, dead_owner(), ttl=120)
    blocked = await first.command("/cio ramp 20")
    assert "is changing traffic right now (ramp to 10%" in blocked.text
    await first.stop()

    second = await traffic_bot()  # the dead pid is seen at start: released at once, not after its lease
    assert second.store.traffic.change(change)["status"] == "interrupted"
    answer = await second.command("/cio ramp 20")
    assert "0% → 20%" in proposal(answer).text
    await _until(lambda: _notices(sandbox))
    (notice,) = _notices(sandbox)
    assert "the ramp to 10%" in notice.text and "*not* what was asked" in notice.text  # LD still at 0%


async def test_a_live_replica_keeps_its_lock_until_its_lease_runs_out(traffic_bot, sandbox, clock):
    """Another host's process mid-change (a rolling deploy) is not declared dead by a new process;
    if it stops renewing its lock, the lease runs out and only then is its change reported."""
    bot = await traffic_bot(lock_seconds=10)
    change = _leave_a_change_in_flight(bot, clock, OTHER_HOST_OWNER, ttl=10)
    await asyncio.sleep(0.5)  # a few sweeps
    assert bot.store.traffic.change(change)["status"] == "started"
    assert "is changing traffic right now" in (await bot.command("/cio ramp 20")).text
    assert not _notices(sandbox)

    bot.store.traffic.renew_lock(1, OTHER_HOST_OWNER, clock.timestamp() + 10)  # it is alive: renews
    clock.advance(seconds=6)
    await asyncio.sleep(0.5)
    assert bot.store.traffic.change(change)["status"] == "started"

    clock.advance(seconds=5)  # no renewal for longer than the lease: that process is gone
    await _until(lambda: _notices(sandbox))
    assert bot.store.traffic.change(change)["status"] == "interrupted"
    assert len(_notices(sandbox)) == 1
    answer = await bot.command("/cio ramp 20")
    assert "0% → 20%" in proposal(answer).text


async def test_a_rollback_waiting_on_a_dead_replicas_lock_gets_through_when_the_lease_runs_out(
        traffic_bot, sandbox, clock):
    sandbox.launchdarkly.set_on(True)
    sandbox.launchdarkly.set_rollout(50)
    bot = await traffic_bot(lock_seconds=10, rollback_confirmation=False)
    _leave_a_change_in_flight(bot, clock, OTHER_HOST_OWNER, ttl=10)

    async def lease_runs_out() -> None:
        await asyncio.sleep(0.3)
        clock.advance(seconds=11)

    expire = asyncio.create_task(lease_runs_out())
    answer = await bot.command("/cio rollback bounce spike")
    await expire
    assert "Verified: on, 50% to the new path → off" in answer.text
    assert ld_of(bot).served_weight() == 0
    await _until(lambda: _notices(sandbox))


def test_sdk_sample_carries_the_bucket_by_attribute():
    fake = FakeLaunchDarkly()
    fake.set_rollout(50)
    fake.env()["fallthrough"]["rollout"]["bucketBy"] = "email"
    keys = sample_keys(4000)
    without = evaluate(fake.flag(), SANDBOX_LD_ENVIRONMENT, keys)
    assert set(without) == {True}, "the SDK buckets contexts without the attribute together"
    with_attr = evaluate(fake.flag(), SANDBOX_LD_ENVIRONMENT, keys, bucket_by="email")
    assert abs(sum(with_attr) / len(keys) - 0.5) <= tolerance(0.5, len(keys), 4.0)


# -- verification on the SDK stream (LAUNCHDARKLY_SDK_KEY) ---------------------------------------------
async def stream_bot(traffic_bot, sandbox, **config):
    bot = await traffic_bot(env={"LAUNCHDARKLY_SDK_KEY": SANDBOX_LD_SDK_KEY}, sdk_stream_url=sandbox.launchdarkly.url,
                            sdk_base_url=sandbox.launchdarkly.url, **config)
    stream = bot.services.traffic.stream
    for _ in range(250):
        if stream.ready:
            break
        await asyncio.sleep(0.02)
    assert stream.ready, "the SDK connected to the sandbox stream"
    return bot


async def test_with_an_sdk_key_verification_uses_the_sdk_stream(traffic_bot, sandbox):
    bot = await stream_bot(traffic_bot, sandbox)
    sandbox.launchdarkly.stream_delay = 0.2  # the stream is a little behind the REST API
    _, clicked = await ramp(bot, 10)
    assert "Verified" in clicked.text and "from the SDK stream (version 2)" in clicked.text
    assert bot.store.traffic.history(1)[0]["verification"]["source"] == "the SDK stream (version 2)"
    assert len(sandbox.launchdarkly.calls("^/all$")) == 1


async def test_a_lagging_sdk_stream_is_not_verified(traffic_bot, sandbox):
    bot = await stream_bot(traffic_bot, sandbox, sdk_stream_wait_seconds=0.3)
    sandbox.launchdarkly.pause_stream()
    _, clicked = await ramp(bot, 10)
    sandbox.launchdarkly.pause_stream(False)
    assert "the SDK stream still had version 1 of `use-customerio` after 0.3 s, not version 2" in clicked.text
    assert "not announced as done" in clicked.text
    assert bot.store.traffic.history(1)[0]["status"] == "unverified"


async def test_the_fake_stream_refuses_a_wrong_sdk_key(ld):
    answer = await ld.client.get("/all", headers={"Authorization": "sdk-wrong"})
    assert answer.status_code == 401

"""testing: a production smoke test on a clearly named test profile, and the App API.

The smoke test identifies a profile whose id starts with ``cio-launchbot-smoke-test-``
and whose email is at the reserved ``.invalid`` domain (RFC 2606: nothing can be
delivered there), unsubscribed, tracks one ``launch_smoke_test`` event, then suppresses
and deletes the profile. It never touches a profile it did not create.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from checks.context import SMOKE_PREFIX, CheckContext, Providers
from checks.engine import Outcome, check, passed, skipped, warned

SMOKE_EVENT = "launch_smoke_test"


def smoke_profile(ctx: CheckContext) -> tuple[str, dict[str, Any]]:
    stamp = int(ctx.now or time.time())
    tag = secrets.token_hex(3)
    customer_id = f"{SMOKE_PREFIX}-{ctx.environment}-{stamp}-{tag}"
    attributes = {
        "email": f"{SMOKE_PREFIX}+{stamp}-{tag}@example.invalid",
        "created_at": stamp,
        "unsubscribed": True,
        "cio_launchbot_smoke_test": True,
    }
    return customer_id, attributes


def is_smoke_profile(customer_id: str) -> bool:
    return customer_id.startswith(SMOKE_PREFIX + "-")


@check("testing.smoke_test", "Smoke test: identify, event, clean-up on a test profile")
async def smoke_test(ctx: CheckContext, p: Providers) -> Outcome:
    if p.track is None:
        return skipped("Track API credentials are not set (see credentials.present)")
    track = p.track
    customer_id, attributes = smoke_profile(ctx)
    if not is_smoke_profile(customer_id):  # the one guard that keeps real people out of this
        raise AssertionError("smoke test profile id must carry the smoke-test prefix")
    timings: dict[str, float] = {}

    async def timed(step: str, call: Any) -> None:
        started = time.perf_counter()
        await call
        timings[step] = round((time.perf_counter() - started) * 1000, 1)

    cleanup_error = ""
    try:
        # from here on the profile may exist (even a failed write can have landed): clean up
        await timed("identify", track.identify(customer_id, attributes))
        await timed("track", track.track(customer_id, SMOKE_EVENT,
                                         {"source": "cio-launchbot", "environment": ctx.environment},
                                         timestamp=int(ctx.now or time.time())))
    finally:
        try:
            await timed("suppress", track.suppress(customer_id))
            await timed("delete", track.delete(customer_id))
        except Exception as exc:  # reported below; the original failure, if any, wins
            cleanup_error = str(exc)
    figures = ", ".join(f"{k} {v:.0f} ms" for k, v in timings.items())
    data = {"profile": customer_id, "latency_ms": timings}
    if cleanup_error:
        return warned(f"Identify and event worked ({figures}) but the test profile could not be removed",
                      f"Delete the profile {customer_id} in Customer.io (People) by hand: {cleanup_error}",
                      data=data)
    limit_ms = ctx.thresholds.p99_latency_seconds * 1000
    slow = [k for k, v in timings.items() if v > limit_ms]
    if slow:
        return warned(f"Smoke test passed but {', '.join(slow)} took longer than the p99 alert "
                      f"threshold ({limit_ms:.0f} ms): {figures}",
                      "Check the Track API status and the network path from the bot; the latency alert "
                      "would fire at this speed.", data=data)
    return passed(f"Test profile identified, `{SMOKE_EVENT}` tracked and the profile removed ({figures})",
                  data=data)


@check("testing.app_api", "App API reachable")
async def app_api(ctx: CheckContext, p: Providers) -> Outcome:
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    started = time.perf_counter()
    campaigns = await p.app.campaigns()  # its own call: the latency reported is real
    elapsed = (time.perf_counter() - started) * 1000
    return passed(f"App API answered in {elapsed:.0f} ms ({len(campaigns)} campaign(s))",
                  data={"latency_ms": round(elapsed, 1)})

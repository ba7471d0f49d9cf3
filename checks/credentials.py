"""credentials: present, distinct from the other environment, accepted, in the right region."""

from __future__ import annotations

import asyncio

from checks.base import Severity
from checks.context import CheckContext, Providers, RegionAnswer, TrackClient, http_status
from checks.engine import Outcome, check, failed, passed, skipped, warned


def _names(ctx: CheckContext) -> str:
    return "production" if ctx.environment == "production" else ctx.environment


async def _region(p: Providers, which: str, client: TrackClient) -> RegionAnswer:
    return await p.memo.once(f"region:{which}", client.region)


@check("credentials.present", "Site ID, Track API key and App API key are set")
async def present(ctx: CheckContext, p: Providers) -> Outcome:
    missing = ctx.credentials.missing
    if missing:
        return failed(
            f"{len(missing)} {_names(ctx)} credential variable(s) not set: {', '.join(missing)}",
            f"Set {', '.join(missing)} in the bot's environment from your secrets manager.",
        )
    return passed(f"All three {_names(ctx)} credentials are set")


@check("credentials.distinct", "Credentials differ from the other environment's")
async def distinct(ctx: CheckContext, p: Providers) -> Outcome:
    facts = ctx.credentials
    if not facts.other_configured:
        return skipped(f"{ctx.other_environment} credentials are not configured, so there is nothing "
                       "to compare with")
    if facts.same_as_other:
        same = ", ".join(facts.same_as_other)
        return failed(
            f"The {_names(ctx)} {same} {'is' if len(facts.same_as_other) == 1 else 'are'} the same as "
            f"{ctx.other_environment}'s",
            f"Use the {_names(ctx)} workspace's own Site ID and API keys (Customer.io → Settings → "
            f"Workspace Settings → API Credentials of the {_names(ctx)} workspace).",
        )
    return passed(f"Site ID and keys differ from {ctx.other_environment}'s")


@check("credentials.region", "Track API accepts the key pair and the region matches")
async def region(ctx: CheckContext, p: Providers) -> Outcome:
    if p.track is None:
        return skipped("Track API credentials are not set (see credentials.present)")
    try:
        answer = await _region(p, "this", p.track)
    except Exception as exc:
        if http_status(exc) in (401, 403):
            return failed(
                f"Customer.io rejected the {_names(ctx)} Site ID / Track API key pair (HTTP {http_status(exc)})",
                f"Copy the Site ID and Track API key of the {_names(ctx)} workspace again from "
                "Customer.io → Settings → API Credentials, and check that the key was not revoked.",
            )
        raise
    actual = (answer.region or "").lower()
    if actual != ctx.region:
        urls = ctx.region_urls.get(actual)
        where = f" ({urls[0]} for the Track API, {urls[1]} for the App API)" if urls else ""
        return failed(
            f"The account is in the {actual.upper() or '?'} region but CUSTOMERIO_REGION is "
            f"{ctx.region.upper()}",
            f"Set CUSTOMERIO_REGION={actual or '?'} so the bot uses {answer.url or (urls[0] if urls else '?')}"
            f"{where}; the {ctx.region.upper()} hosts will not serve this workspace.",
            data={"region": actual, "url": answer.url},
        )
    return passed(f"Key pair accepted; region {actual.upper()} ({answer.url}) matches CUSTOMERIO_REGION",
                  data={"region": actual, "environment_id": answer.environment_id})


@check("credentials.workspace", "The workspace differs from the other environment's")
async def workspace(ctx: CheckContext, p: Providers) -> Outcome:
    if p.track is None:
        return skipped("Track API credentials are not set (see credentials.present)")
    if p.other_track is None:
        return skipped(f"{ctx.other_environment} Track API credentials are not configured, so the "
                       "workspaces cannot be compared")
    mine_call = asyncio.ensure_future(_region(p, "this", p.track))
    theirs_call = asyncio.ensure_future(_region(p, "other", p.other_track))
    await asyncio.wait({mine_call, theirs_call})  # both lookups at once
    try:
        mine = mine_call.result()
    except Exception as exc:
        theirs_call.exception()  # retrieved: this one's failure explains the outcome
        if http_status(exc) in (401, 403):
            return skipped("the Track API key pair was rejected (see credentials.region)")
        raise
    try:
        theirs = theirs_call.result()
    except Exception as exc:
        if http_status(exc) in (401, 403):
            return warned(f"Customer.io rejected the {ctx.other_environment} key pair, so the workspaces "
                          "cannot be compared",
                          f"Fix the {ctx.other_environment} credentials (CUSTOMERIO_STAGING_…) and rerun.")
        raise
    if mine.environment_id is None:
        return warned("Customer.io did not name the workspace (no environment_id)",
                      "Rerun later; if it persists, compare the workspaces by hand in Customer.io.")
    if mine.environment_id == theirs.environment_id:
        return failed(
            f"{_names(ctx).capitalize()} and {ctx.other_environment} point at the same workspace "
            f"(environment {mine.environment_id})",
            f"Create or pick a separate {_names(ctx)} workspace in Customer.io and use its credentials; "
            "test traffic and real customers must not share a workspace.",
        )
    return passed(f"Workspace {mine.environment_id} is not {ctx.other_environment}'s "
                  f"({theirs.environment_id})")


@check("credentials.app_key", "App API key accepted")
async def app_key(ctx: CheckContext, p: Providers) -> Outcome:
    if p.app is None:
        return skipped("the App API key is not set (see credentials.present)")
    try:
        await p.memo.once("app:reporting_webhooks", p.app.reporting_webhooks)
    except Exception as exc:
        if http_status(exc) in (401, 403):
            return failed(
                f"Customer.io rejected the {_names(ctx)} App API key (HTTP {http_status(exc)})",
                "Create an App API key in Customer.io → Settings → API Credentials → App API Keys "
                f"of the {_names(ctx)} workspace and set it as {ctx.variable_prefix}APP_API_KEY.",
            )
        raise
    return passed("App API key accepted")


@check("credentials.source", "Keys come from the environment, not a .env file",
       severity=Severity.ADVISORY)
async def source(ctx: CheckContext, p: Providers) -> Outcome:
    names = ctx.credentials.dotenv_names
    if names:
        return warned(
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} also defined in "
            f"{ctx.credentials.dotenv_path}",
            "Inject production keys from a secrets manager (the platform's secret store) and remove "
            "them from the .env file, which is easy to commit or copy by mistake.",
        )
    return passed("No credential is defined in a .env file of the working directory")

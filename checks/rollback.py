"""rollback: the LaunchDarkly flag is a working kill switch, the token can write, and the
backup messaging path and notification plan are named."""

from __future__ import annotations

from typing import Any

from checks.base import Severity
from checks.context import CheckContext, Providers, http_status
from checks.engine import Outcome, check, failed, passed, skipped

FLAG_VARS = "LAUNCHDARKLY_PROJECT, LAUNCHDARKLY_ENVIRONMENT and LAUNCHDARKLY_FLAG"


def _unavailable(ctx: CheckContext, p: Providers) -> Outcome | None:
    if p.launchdarkly is None:
        return skipped(ctx.launchdarkly_unavailable or "LaunchDarkly client not configured")
    if not (ctx.flag_project and ctx.flag_environment and ctx.flag_key):
        return failed("The LaunchDarkly flag is not named",
                      f"Set {FLAG_VARS} (the boolean flag that routes traffic to Customer.io).")
    return None


async def _flag(ctx: CheckContext, p: Providers) -> dict[str, Any]:
    assert p.launchdarkly is not None and ctx.flag_project and ctx.flag_key and ctx.flag_environment
    ld = p.launchdarkly
    return await p.memo.once("ld:flag", lambda: ld.get_flag(ctx.flag_project or "", ctx.flag_key or "",
                                                           ctx.flag_environment or ""))


async def _flag_or_outcome(ctx: CheckContext, p: Providers) -> dict[str, Any] | Outcome:
    if (missing := _unavailable(ctx, p)) is not None:
        return missing
    try:
        return await _flag(ctx, p)
    except Exception as exc:
        if http_status(exc) == 404:
            return skipped("the flag does not exist (see rollback.flag_exists)")
        if http_status(exc) in (401, 403):
            return skipped("LaunchDarkly rejected the token (see rollback.flag_exists)")
        raise


def _where(ctx: CheckContext) -> str:
    return f"flag `{ctx.flag_key}` in project `{ctx.flag_project}`, environment `{ctx.flag_environment}`"


@check("rollback.flag_exists", "The traffic flag exists in the environment")
async def flag_exists(ctx: CheckContext, p: Providers) -> Outcome:
    if (missing := _unavailable(ctx, p)) is not None:
        return missing
    try:
        flag = await _flag(ctx, p)
    except Exception as exc:
        status = http_status(exc)
        if status == 404:
            return failed(f"LaunchDarkly has no {_where(ctx)}",
                          "Create the boolean flag in LaunchDarkly (false = old path, true = Customer.io) or "
                          f"fix {FLAG_VARS}.")
        if status in (401, 403):
            return failed(f"LaunchDarkly rejected the API token (HTTP {status})",
                          "Create an access token with the Writer role and set LAUNCHDARKLY_API_TOKEN.")
        raise
    env = (flag.get("environments") or {}).get(ctx.flag_environment or "")
    if not isinstance(env, dict):
        return failed(f"The flag exists but has no environment `{ctx.flag_environment}`",
                      "Check LAUNCHDARKLY_ENVIRONMENT (the environment key, e.g. production).")
    return passed(f"{_where(ctx)} exists ({'on' if env.get('on') else 'off'})")


@check("rollback.flag_boolean", "The flag is boolean")
async def flag_boolean(ctx: CheckContext, p: Providers) -> Outcome:
    flag = await _flag_or_outcome(ctx, p)
    if isinstance(flag, Outcome):
        return flag
    values = [v.get("value") for v in flag.get("variations") or []]
    if flag.get("kind") != "boolean" or sorted(map(repr, values)) != sorted(map(repr, [True, False])):
        return failed(f"The flag is {flag.get('kind') or 'not boolean'} with variations {values!r}",
                      "Use a boolean flag (variations true and false) so on/off and percentages mean "
                      "exactly new path / old path.")
    return passed("The flag is boolean (true / false)")


@check("rollback.kill_switch", "Turning the flag off serves the old path (false)")
async def kill_switch(ctx: CheckContext, p: Providers) -> Outcome:
    flag = await _flag_or_outcome(ctx, p)
    if isinstance(flag, Outcome):
        return flag
    env = (flag.get("environments") or {}).get(ctx.flag_environment or "") or {}
    variations = flag.get("variations") or []
    off = env.get("offVariation")
    if not isinstance(off, int) or not 0 <= off < len(variations):
        return failed("The flag has no off variation, so turning it off serves the SDK default",
                      f"Set the off variation of {_where(ctx)} to false in LaunchDarkly.")
    value = variations[off].get("value")
    if value is not False:
        return failed(f"Turning the flag off serves {value!r}, not the old path (false)",
                      f"Set the off variation of {_where(ctx)} to false, so a rollback really rolls back.")
    return passed("Off serves false: a rollback returns everyone to the old path")


@check("rollback.write_access", "The API token can change the flag (dry run)")
async def write_access(ctx: CheckContext, p: Providers) -> Outcome:
    if (missing := _unavailable(ctx, p)) is not None:
        return missing
    assert p.launchdarkly is not None
    try:
        await p.launchdarkly.dry_run_patch(
            ctx.flag_project or "", ctx.flag_key or "", ctx.flag_environment or "",
            [{"kind": "turnFlagOff"}], "cio-launchbot readiness check (dry run, nothing applied)")
    except Exception as exc:
        status = http_status(exc)
        if status in (401, 403):
            return failed(f"The token cannot change the flag (HTTP {status})",
                          "Give LAUNCHDARKLY_API_TOKEN the Writer role (or a custom role allowing "
                          f"updateOn and updateFallthrough on {_where(ctx)}).")
        if status == 405:
            return failed("This environment requires approvals: the bot cannot roll back on its own",
                          "Let the bot's token bypass approvals for this flag, or plan rollbacks through "
                          "an approver who is on call during the launch.")
        if status == 404:
            return skipped("the flag does not exist (see rollback.flag_exists)")
        raise
    return passed("A dry-run turnFlagOff was accepted: the token can roll back")


@check("rollback.backup_path", "A backup messaging path is named", severity=Severity.BLOCKING)
async def backup_path(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.backup_messaging:
        return failed("No backup messaging path is named",
                      "Name what sends messages if Customer.io is rolled back (e.g. the old ESP) in "
                      "CIO_CONFIG: [rollback] backup_messaging = \"…\".")
    return passed(f"Backup messaging: {ctx.backup_messaging}")


@check("rollback.notification_plan", "A notification plan is named")
async def notification_plan(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.notification_plan:
        return failed("No notification plan is named",
                      "Say who is told of a rollback and how in CIO_CONFIG: "
                      "[rollback] notification_plan = \"…\".")
    return passed(f"Notification plan: {ctx.notification_plan}")

"""The go-live plan as data: milestone specs (defaults and ``[timeline]`` overrides), parsing of
``/cio golive <when> [zone]``, and durations as people read them. No I/O, no Slack.

Offsets are elapsed time from T-0: across a daylight-saving change T-24h is 24 real hours
before T-0, so its wall-clock time differs from T-0's by an hour. Every instant is kept in UTC.

CIO_CONFIG (every key optional)::

    [timeline]
    heads_up_minutes = 10        # a heads-up this long before T-0 (0 = none, the default)
    grace_minutes = 15           # an action later than this waits for an operator to confirm it
    claim_lease_seconds = 120    # a claim whose process died is taken over after this
    action_lease_seconds = 300   # an action (checks, smoke tests) whose process died is announced
                                 # after this, with Run / Skip: keep it longer than [checks] deadline_seconds
    post_timeout_seconds = 30    # one post's time limit (at most half the lease)
    tick_seconds = 5             # the scheduler's longest sleep (it wakes on time regardless)
    post_concurrency = 16        # posts in flight at once (many launches due together)

    [[timeline.milestones]]      # override a default milestone by key, or add one
    key = "t-24h"                # defaults: t-24h t-12h t-1h t0 t+1h t+2h t+24h
    offset = "-36h"              # "-24h", "+1h30m", "-10m", "0"
    name = "Staging sign-off"
    owners = ["S0123ABC", "U0456DEF"]   # mentioned in the reminder (default: CIO_OPERATORS)
    action = "readiness_check:staging"  # published as timeline.action ("" for none)
    ramp_to = 50                 # ramp milestones: health gate + a "Ramp to 50%" button (false: none)
    enabled = false              # drop a default milestone
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from bot.blocks import shown
from bot.config import OPERATOR_ID, ConfigError, ConfigTable
from bot.errors import UserError

#: actions that are published as ``timeline.action`` for other domains to run
TIMELINE_KEYS = ("heads_up_minutes", "grace_minutes", "claim_lease_seconds", "action_lease_seconds",
                 "post_timeout_seconds", "tick_seconds", "post_concurrency", "milestones")
MILESTONE_KEYS = ("key", "offset", "name", "owners", "action", "ramp_to", "enabled")
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9_\-]+)?$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9+\-_]{0,31}$")
MAX_AHEAD = timedelta(days=366)
#: the first milestone must be at least this far ahead when a plan is made
MIN_LEAD = timedelta(minutes=1)


@dataclass(frozen=True)
class MilestoneSpec:
    key: str
    offset_s: int
    name: str
    owners: tuple[str, ...] = ()
    action: str = ""
    ramp_to: int | None = None
    kind: str = "milestone"  # milestone | heads_up

    @property
    def label(self) -> str:
        return offset_label(self.offset_s)


DEFAULT_PLAN: tuple[MilestoneSpec, ...] = (
    MilestoneSpec("t-24h", -24 * 3600, "Final staging validation", action="readiness_check:staging"),
    MilestoneSpec("t-12h", -12 * 3600, "Production smoke tests", action="smoke_test"),
    MilestoneSpec("t-1h", -3600, "Enable the integration behind the feature flag (flag on, 0% traffic)"),
    MilestoneSpec("t0", 0, "Go live with 10% of traffic", ramp_to=10),
    MilestoneSpec("t+1h", 3600, "Verify metrics and go to 50%", ramp_to=50),
    MilestoneSpec("t+2h", 2 * 3600, "Full traffic if healthy", ramp_to=100),
    MilestoneSpec("t+24h", 24 * 3600, "Post-launch review", action="review"),
)

ACTION_TEXT = {
    "readiness_check:staging": "runs the readiness checks against staging",
    "smoke_test": "runs the production smoke tests",
    "review": "starts the post-launch review",
}


def action_text(action: str) -> str:
    return ACTION_TEXT.get(action, f"runs `{action}`")


# -- durations ------------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?|s|secs?|seconds?)", re.I)
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _unit(word: str) -> int:
    word = word.lower()
    if word.startswith("mi") or word == "m":
        return 60
    return _UNIT_S[word[0]]


def parse_offset(text: str) -> int:
    """``-24h``, ``+1h30m``, ``0``, ``-10m`` -> seconds. ValueError if it is not one."""
    t = str(text).strip().replace(" ", "")
    if t in ("0", "+0", "-0", "T-0", "t0"):
        return 0
    m = re.fullmatch(r"([+-])((?:\d+(?:d|h|m|s))+)", t)
    if not m:
        raise ValueError(text)
    seconds = sum(int(n) * _unit(u) for n, u in re.findall(r"(\d+)([dhms])", m.group(2)))
    return -seconds if m.group(1) == "-" else seconds


def offset_label(offset_s: int) -> str:
    if offset_s == 0:
        return "T-0"
    sign = "-" if offset_s < 0 else "+"
    rest = abs(offset_s)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return f"T{sign}{''.join(parts)}"


def human(seconds: float) -> str:
    """3 h 12 min, 45 s, 2 d 3 h."""
    s = int(round(abs(seconds)))
    if s < 60:
        return f"{s} s"
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    if d:
        return f"{d} d {h} h" if h else f"{d} d"
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{m} min"


def mention(owner: str) -> str:
    return f"<!subteam^{owner}>" if owner.startswith("S") else f"<@{owner}>"


# -- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineConfig:
    milestones: tuple[MilestoneSpec, ...] = DEFAULT_PLAN
    heads_up_minutes: int = 0
    grace_s: int = 15 * 60
    lease_s: float = 120.0
    #: an action still running after this long in another process is taken for abandoned
    action_lease_s: float = 300.0
    tick_s: float = 5.0
    post_timeout_s: float = 30.0
    concurrency: int = 16
    batch: int = 200

    def plan(self) -> list[MilestoneSpec]:
        """The milestones in time order, with the heads-up when one is configured."""
        specs = list(self.milestones)
        if self.heads_up_minutes:
            go = next((s for s in specs if s.offset_s == 0), None)
            specs.append(MilestoneSpec(
                "heads-up", -self.heads_up_minutes * 60, f"Go-live in {self.heads_up_minutes} minutes",
                owners=go.owners if go else (), kind="heads_up"))
        return sorted(specs, key=lambda s: s.offset_s)

    @classmethod
    def from_section(cls, section: Mapping[str, Any], operators: tuple[str, ...]) -> TimelineConfig:
        """Read ``[timeline]`` of CIO_CONFIG; a bad value stops start-up with one sentence."""
        table = ConfigTable("timeline", section)
        table.reject_unknown(TIMELINE_KEYS)
        base = {s.key: replace(s, owners=operators) for s in DEFAULT_PLAN}
        order = list(base)
        entries = section.get("milestones", [])
        if not isinstance(entries, list):
            raise ConfigError("[timeline] milestones in CIO_CONFIG must be [[timeline.milestones]] tables.")
        for i, entry in enumerate(entries, start=1):
            where = f"[[timeline.milestones]] entry {i}"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
                raise ConfigError(f"{where} in CIO_CONFIG needs a key, such as key = \"t-24h\".")
            key = entry["key"].strip().lower()
            if not KEY_RE.match(key):
                raise ConfigError(f"{where} has key {key!r}; use letters, digits, + and - (e.g. \"t-24h\").")
            if unknown := sorted(set(entry) - set(MILESTONE_KEYS)):
                raise ConfigError(f"{where} ({key}) in CIO_CONFIG has unknown key(s) {', '.join(unknown)}; "
                                  f"known keys are {', '.join(MILESTONE_KEYS)}.")
            if entry.get("enabled", True) is False:
                base.pop(key, None)
                continue
            spec = base.get(key)
            if spec is None:
                if "offset" not in entry or "name" not in entry:
                    raise ConfigError(f"{where} ({key}) is a new milestone and needs an offset and a name.")
                spec = MilestoneSpec(key, 0, "", owners=operators)
                order.append(key)
            changes: dict[str, Any] = {}
            if "offset" in entry:
                try:
                    changes["offset_s"] = parse_offset(entry["offset"])
                except ValueError:
                    raise ConfigError(f"{where} ({key}) has offset {entry['offset']!r}; write it like "
                                      "\"-24h\", \"+1h30m\", \"-10m\" or \"0\".") from None
            if "name" in entry:
                if not isinstance(entry["name"], str) or not entry["name"].strip():
                    raise ConfigError(f"{where} ({key}) needs a non-empty name.")
                changes["name"] = entry["name"].strip()[:150]
            if "owners" in entry:
                owners = entry["owners"]
                if isinstance(owners, str):
                    owners = [o.strip() for o in owners.split(",") if o.strip()]
                if not isinstance(owners, list) or not all(isinstance(o, str) and OPERATOR_ID.match(o)
                                                           for o in owners):
                    raise ConfigError(f"{where} ({key}) owners must be Slack user IDs (U…/W…) or user-group "
                                      f"IDs (S…), got {entry['owners']!r}.")
                changes["owners"] = tuple(owners)
            if "action" in entry:
                action = entry["action"] or ""
                if not isinstance(action, str) or (action and not ACTION_RE.match(action)):
                    raise ConfigError(f"{where} ({key}) action must be a name such as \"smoke_test\" or "
                                      f"\"readiness_check:staging\" (or \"\" for none), got {entry['action']!r}.")
                changes["action"] = action
            if "ramp_to" in entry:
                ramp = entry["ramp_to"]
                if ramp is not False and (isinstance(ramp, bool) or not isinstance(ramp, int) or not 1 <= ramp <= 100):
                    raise ConfigError(f"{where} ({key}) ramp_to must be a whole percentage from 1 to 100 "
                                      f"(or false for none), got {ramp!r}.")
                changes["ramp_to"] = None if ramp is False else ramp
            base[key] = replace(spec, **changes)
        milestones = tuple(base[k] for k in order if k in base)
        if not milestones:
            raise ConfigError("[timeline] in CIO_CONFIG disables every milestone; keep at least one.")
        offsets = [m.offset_s for m in milestones]
        if len(set(offsets)) != len(offsets):
            raise ConfigError("[timeline] milestones in CIO_CONFIG must each have a different offset.")
        heads_up = table.integer("heads_up_minutes", 0, 0, 24 * 60)
        if heads_up and -heads_up * 60 in offsets:
            raise ConfigError("[timeline] heads_up_minutes falls on the same instant as a milestone; change one.")
        lease_s = table.number("claim_lease_seconds", 120, 10, 3600)
        post_timeout_s = table.number("post_timeout_seconds", 30, 1, 600)
        if post_timeout_s * 2 > lease_s:
            raise ConfigError("[timeline] claim_lease_seconds in CIO_CONFIG must be at least twice "
                              "post_timeout_seconds, so a slow post never outlives its claim.")
        return cls(
            milestones=milestones,
            heads_up_minutes=heads_up,
            grace_s=int(table.number("grace_minutes", 15, 0, 7 * 24 * 60) * 60),
            lease_s=lease_s,
            action_lease_s=table.number("action_lease_seconds", 300, 60, 7 * 24 * 3600),
            tick_s=table.number("tick_seconds", 5, 0.05, 300),
            post_timeout_s=post_timeout_s,
            concurrency=table.integer("post_concurrency", 16, 1, 256),
        )


# -- parsing `when` -------------------------------------------------------------------------------
@dataclass(frozen=True)
class When:
    t0: datetime  # aware, UTC
    zone: str


EXAMPLES = "`2026-12-10 15:00 Europe/Berlin`, ISO 8601 such as `2026-12-10T14:00Z`, or `in 26h`"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO = re.compile(r"^\d{4}-?\d{2}-?\d{2}[Tt]\d")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_RELATIVE = re.compile(r"^in\s+(.+)$", re.I)


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    return {z.casefold(): z for z in available_timezones()}


def zone_name(name: str) -> str:
    """The canonical IANA name for ``name`` (``utc``, ``Z`` and any letter case accepted)."""
    if name.upper() in ("Z", "UTC"):
        return "UTC"
    canonical = _zones_by_folded_name().get(name.casefold())
    if canonical is None:
        raise UserError(f"{shown(name)} is not a time zone I know; use an IANA name such as Europe/Berlin, "
                        "America/New_York or UTC.")
    return canonical


def localize(naive: datetime, name: str) -> datetime:
    """A wall-clock time in the zone ``name`` -> an aware datetime; refuses gaps and repeats (DST)."""
    zone = ZoneInfo(name)
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    shown = naive.strftime("%Y-%m-%d %H:%M")
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if back != naive:
            before = (first.astimezone(UTC) - timedelta(hours=3)).astimezone(zone)
            after = (first.astimezone(UTC) + timedelta(hours=3)).astimezone(zone)
            raise UserError(
                f"{shown} does not exist in {name}: the clocks jump forward that night "
                f"(from {before.strftime('%Z')} to {after.strftime('%Z')}); pick a time outside the skipped hour."
            )
        offsets = [_offset(d) for d in (first, second)]
        raise UserError(
            f"{shown} happens twice in {name} (the clocks go back that night); say which with "
            f"an offset: `{naive.strftime('%Y-%m-%dT%H:%M')}{offsets[0]}` or "
            f"`{naive.strftime('%Y-%m-%dT%H:%M')}{offsets[1]}`."
        )
    return first


def _offset(d: datetime) -> str:
    off = d.utcoffset() or timedelta(0)
    total = int(off.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def parse_when(text: str, *, default_zone: str, now: datetime) -> When:
    """``/cio golive`` arguments -> T-0. Raises :class:`UserError` with one sentence."""
    raw = " ".join(text.split())
    if not raw:
        raise UserError(f"Say when T-0 is: {EXAMPLES}.")
    junk = UserError(f"I could not read {shown(raw, 80)} as a go-live time; use {EXAMPLES}.")
    rel = _RELATIVE.match(raw)
    if rel:
        rest = rel.group(1)
        total, pos = 0, 0
        for m in _DURATION.finditer(rest):
            if rest[pos:m.start()].strip():
                break
            total += int(m.group(1)) * _unit(m.group(2))
            pos = m.end()
        zone_text = rest[pos:].strip()
        if pos == 0 or " " in zone_text:
            raise junk
        zone = zone_name(zone_text or default_zone)
        # to the nearest whole minute, as the plan shows it
        at = (now + timedelta(seconds=total + 30)).astimezone(UTC).replace(second=0, microsecond=0)
        return When(at, zone)
    tokens = raw.split(" ")
    if len(tokens) > 3:
        raise junk
    first = tokens[0]
    if _ISO.match(first):
        if len(tokens) > 2:
            raise junk
        try:
            parsed = datetime.fromisoformat(first.upper())
        except ValueError:
            raise junk from None
        zone = zone_name(tokens[1] if len(tokens) == 2 else default_zone)
        if parsed.tzinfo is None:
            parsed = localize(parsed, zone)
        return When(parsed.astimezone(UTC), zone)
    if not _DATE.match(first):
        raise junk
    if len(tokens) == 1:
        raise UserError(f"{shown(first)} has no time of day; add one, e.g. {shown(first + ' 15:00')}.")
    clock_m = _TIME.match(tokens[1])
    if not clock_m:
        raise junk
    zone = zone_name(tokens[2] if len(tokens) == 3 else default_zone)
    try:
        day = date.fromisoformat(first)
        at = time(int(clock_m.group(1)), int(clock_m.group(2)), int(clock_m.group(3) or 0))
    except ValueError:
        raise UserError(f"{shown(first + ' ' + tokens[1])} is not a real date and time; check the day and the hour.") from None
    return When(localize(datetime.combine(day, at), zone).astimezone(UTC), zone)

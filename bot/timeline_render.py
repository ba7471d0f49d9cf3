"""Block Kit for the go-live timeline: the plan, each milestone's post, ``/cio timeline``.

Every instant is shown with ``<!date^…>`` so each reader sees their own local time; the
fallback text is the time in the plan's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    PlainTextObject,
)

from bot import blocks
from bot.blocks import escape
from bot.health import HealthFinding
from bot.timeline_plan import action_text, human, mention

#: a post more than this late says so
LATE_NOTE_S = 60

ICONS = {
    "planned": ":white_circle:",
    "posting": ":arrows_counterclockwise:",
    "done": ":white_check_mark:",
    "late": ":hourglass:",
    "waiting": ":raised_hand:",
    "skipped": ":fast_forward:",
    "cancelled": ":x:",
    "on hold": ":double_vertical_bar:",
}


def when(ts: float, zone: str, fmt: str = "{date_short_pretty} {time}") -> str:
    local = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(zone))
    return blocks.user_date(ts, local.strftime("%a %Y-%m-%d %H:%M %Z"), fmt)


def owners_text(owners: Sequence[str]) -> str:
    return " ".join(mention(o) for o in owners)


def display_state(m: dict[str, Any], timeline_state: str, now: float) -> str:
    state = m["state"]
    if state == "pending":
        if timeline_state == "paused" and m["due_ts"] <= now:
            return "on hold"
        return "planned"
    if state == "claimed":
        return "posting"
    if state == "awaiting":
        return "waiting"
    if state == "posted":
        return "late" if (m.get("late_s") or 0) >= LATE_NOTE_S else "done"
    return state  # skipped | cancelled


def _what(m: dict[str, Any]) -> str:
    if m.get("ramp_to"):
        return f"health gate, then offers the ramp to {m['ramp_to']}%"
    if m.get("action"):
        return action_text(m["action"])
    return ""


def plan_blocks(timeline: dict[str, Any], milestones: Sequence[dict[str, Any]], *, user_id: str,
                grace_s: int, moved_from: float | None, now: float) -> tuple[str, list[Block]]:
    zone = timeline["timezone"]
    t0 = timeline["t0_ts"]
    title = "Go-live plan moved" if moved_from is not None else "Go-live plan"
    lead = f"*T-0:* {when(t0, zone)} (planned in {zone} by <@{user_id}>)"
    if moved_from is not None:
        lead += f"\nMoved from {when(moved_from, zone)}; done milestones stay done, pending ones moved."
    if timeline["state"] == "paused":
        lead += "\n:double_vertical_bar: The timeline is *paused*; nothing fires until `/cio golive resume`."
    lines = []
    for m in milestones:
        state = display_state(m, timeline["state"], now)
        what = _what(m)
        owners = owners_text(m["owners"])
        line = f"{ICONS.get(state, '')} *{m['label']}* · {when(m['due_ts'], zone)} · {m['name']}"
        if what:
            line += f" — _{what}_"
        if owners:
            line += f" · {owners}"
        if state not in ("planned",):
            line += f" ({state})"
        lines.append(line)
    out: list[Block] = [blocks.header(title), blocks.section(lead)]
    out.extend(blocks.section("\n".join(chunk)) for chunk in _chunks(lines))
    out.append(blocks.context(
        "Times show in your own time zone. I post each milestone here when it is due, also after a restart; "
        f"one missed while I was down is posted late, and an action more than {human(grace_s)} late waits "
        "for an operator. `/cio timeline` shows where it stands."))
    text = f"{title}: T-0 {datetime.fromtimestamp(t0, UTC).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}, " \
           f"{len(milestones)} milestones."
    return text, blocks.fit(out)


def _chunks(lines: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if size + len(line) + 1 > blocks.MAX_SECTION_TEXT - 20 and out[-1]:
            out.append([])
            size = 0
        out[-1].append(line)
        size += len(line) + 1
    return [c for c in out if c]


@dataclass(frozen=True)
class Gate:
    findings: list[HealthFinding]

    @property
    def verdict(self) -> str:
        if not self.findings:
            return "no health data: no health source is registered, so judge by your dashboards"
        return "passes" if all(f.ok for f in self.findings) else "*FAILS*"

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)


def milestone_blocks(m: dict[str, Any], timeline: dict[str, Any], *, late_s: float, grace_s: int,
                     wait_for_confirmation: bool, gate: Gate | None) -> tuple[str, list[Block]]:
    zone = timeline["timezone"]
    owners = owners_text(m["owners"])
    head = f":alarm_clock: *{m['label']} · {m['name']}*" if m["kind"] != "heads_up" else \
        f":bell: *Heads-up: {m['name']}*"
    body = f"{head}\nDue {when(m['due_ts'], zone)}" + (f" · {owners}" if owners else "")
    out: list[Block] = [blocks.section(body)]
    text = f"{m['label']} · {m['name']}" + (f" {owners}" if owners else "")
    if late_s >= LATE_NOTE_S:
        out.append(blocks.context(f":hourglass: Posted {human(late_s)} late: I was not running, or the "
                                  "timeline was paused, when it was due."))
        text += f" (posted {human(late_s)} late)"
    if m["kind"] == "heads_up":
        out.append(blocks.section(f"T-0 is {when(timeline['t0_ts'], zone)}, in {human(timeline['t0_ts'] - m['due_ts'])}."))
    if gate is not None:
        lines = [f"*Health gate:* {gate.verdict}"]
        lines.extend(f"{':white_check_mark:' if f.ok else ':x:'} {f.name}: {f.detail}" for f in gate.findings[:20])
        out.append(blocks.section("\n".join(lines)))
        out.append(ActionsBlock(block_id=f"timeline-ramp:{m['id']}", elements=[
            ButtonElement(text=PlainTextObject(text=f"Ramp to {m['ramp_to']}%"), action_id="traffic_ramp_request",
                          value=str(m["ramp_to"]), style="primary" if gate.ok else None),
        ]))
        out.append(blocks.context(f"The button asks to move Customer.io traffic to {m['ramp_to']}%: it checks the "
                                  "health gate again and asks for confirmation before the flag changes "
                                  "(launch operators only)."))
        text += f" Health gate: {gate.verdict.replace('*', '')}."
    elif m.get("action"):
        what = action_text(m["action"])
        if wait_for_confirmation:
            out.append(blocks.section(
                f":raised_hand: Not run automatically: this is {human(late_s)} late, more than the "
                f"{human(grace_s)} grace period. A launch operator can run it now ({what}) or skip it."))
            out.append(confirmation_buttons(m))
            text += " Waiting for an operator to confirm the action."
        else:
            out.append(blocks.section(f"Now: {what}. Results follow in this thread."))
    return text, out


def confirmation_buttons(m: dict[str, Any], *, interrupted: bool = False) -> ActionsBlock:
    title, more = ("Run it again?", " It may have run, in part or in full, before the restart.") if interrupted \
        else ("Run a late milestone?", "")
    return ActionsBlock(block_id=f"timeline-late:{m['id']}", elements=[
        ButtonElement(text=PlainTextObject(text="Run it again" if interrupted else "Run it now"),
                      action_id="timeline_run_late", value=str(m["id"]), style="primary",
                      confirm=ConfirmObject(title=title,
                                            text=f"{m['label']} · {m['name']}: {action_text(m['action'])}.{more}",
                                            confirm="Run it", deny="Back")),
        ButtonElement(text=PlainTextObject(text="Skip"), action_id="timeline_skip", value=str(m["id"])),
    ])


def interrupted_blocks(m: dict[str, Any], timeline: dict[str, Any], *,
                       started_ts: float | None) -> tuple[str, list[Block]]:
    """The thread notice of an action whose process died while running it: Run / Skip."""
    zone = timeline["timezone"]
    what = action_text(m["action"])
    since = f", started {when(started_ts, zone, '{date_short_pretty} {time}')}" if started_ts else ""
    body = (f":warning: *The bot restarted while running {m['label']} · {m['name']}* ({what}{since}). "
            "I do not know whether it finished: anything it reported is above in this thread. "
            "I have not run it again by myself. A launch operator can run it again now or skip it.")
    text = (f"{m['label']} · {m['name']}: the bot restarted while running its action; it is not known "
            "whether it finished. Waiting for an operator to run it again or skip it.")
    return text, [blocks.section(body), confirmation_buttons(m, interrupted=True)]


def interrupted_resolved_blocks(m: dict[str, Any], timeline: dict[str, Any], *, user_id: str, ran: bool,
                                at_ts: float) -> tuple[str, list[Block]]:
    """The interrupted action's notice once an operator answered (buttons gone)."""
    zone = timeline["timezone"]
    at = when(at_ts, zone, "{time}")
    what = action_text(m["action"])
    head = f":warning: The bot restarted while running {m['label']} · {m['name']} ({what})."
    tail = (f"Run again on confirmation by <@{user_id}> {at}. Results follow in this thread." if ran else
            f"Skipped by <@{user_id}> {at}: it was not run again.")
    text = f"{m['label']} · {m['name']}: interrupted by a restart; " + \
        (f"run again on confirmation by <@{user_id}>" if ran else f"skipped by <@{user_id}>")
    return text, [blocks.section(f"{head}\n{tail}")]


def _head_blocks(m: dict[str, Any], timeline: dict[str, Any]) -> list[Block]:
    """A posted milestone's head (for updates of its message): title, due, how late it was posted."""
    out: list[Block] = [blocks.section(f":alarm_clock: *{m['label']} · {m['name']}*\n"
                                       f"Due {when(m['due_ts'], timeline['timezone'])}")]
    if (m.get("late_s") or 0) >= LATE_NOTE_S:
        out.append(blocks.context(f":hourglass: Posted {human(m['late_s'])} late."))
    return out


def interrupted_milestone_blocks(m: dict[str, Any], timeline: dict[str, Any]) -> tuple[str, list[Block]]:
    """The milestone's own message once its action is found interrupted (the buttons are on the
    notice in its thread)."""
    what = action_text(m["action"])
    status = (f":warning: *Interrupted:* the bot restarted while running this ({what}); it is not known "
              "whether it finished. It waits for a launch operator to run it again or skip it: the buttons "
              "are in this thread.")
    text = (f"{m['label']} · {m['name']}: its action was interrupted by a restart; waiting for an operator "
            "to run it again or skip it.")
    return text, [*_head_blocks(m, timeline), blocks.section(status)]


def resolved_blocks(m: dict[str, Any], timeline: dict[str, Any], *, user_id: str, ran: bool,
                    at_ts: float, interrupted: bool = False) -> tuple[str, list[Block]]:
    """A waiting milestone's message once an operator answered (buttons gone): a late action, or
    (``interrupted``) one the bot restarted while running."""
    zone = timeline["timezone"]
    again = " again" if interrupted else ""
    verb = f"Run{again} on confirmation by <@{user_id}>" if ran else f"Skipped by <@{user_id}>"
    tail = f"{verb} {when(at_ts, zone, '{time}')}: {action_text(m['action'])}" + \
        (". Results follow in this thread." if ran else f" was not {'run again' if interrupted else 'done'}.")
    if interrupted:
        tail = f":warning: Interrupted by a restart. {tail}"
    text = f"{m['label']} · {m['name']}: " + ("interrupted by a restart; " if interrupted else "") + \
        verb[0].lower() + verb[1:]
    return text, [*_head_blocks(m, timeline), blocks.section(tail)]


def timeline_view(timeline: dict[str, Any] | None, milestones: Sequence[dict[str, Any]],
                  earlier: Sequence[dict[str, Any]], history: Sequence[dict[str, Any]],
                  *, now: float) -> tuple[str, list[Block]]:
    if timeline is None:
        text = "No go-live is planned in this channel. An operator plans one with `/cio golive <when>`."
        return text, [blocks.section(text)]
    zone = timeline["timezone"]
    state = timeline["state"]
    status = {"active": "running", "paused": ":double_vertical_bar: *paused*", "cancelled": ":x: *cancelled*"}[state]
    if state == "paused" and timeline.get("paused_reason"):
        status += f" ({escape(timeline['paused_reason'])})"
    lead = f"*T-0:* {when(timeline['t0_ts'], zone)} ({zone}) · timeline {status}"
    lines = []
    for m in milestones:
        st = display_state(m, state, now)
        line = f"{ICONS.get(st, '')} *{m['label']}* {when(m['due_ts'], zone)} · {m['name']} · _{st}_"
        if st == "late":
            line += f" (posted {human(m['late_s'])} late)"
        if st in ("skipped",) and m.get("resolved_by"):
            line += f" by <@{m['resolved_by']}>"
        elif m["state"] == "posted" and m.get("resolved_by"):  # Run pressed: running (started) or confirmed
            line += f", run {'again ' if m.get('action_interrupted_ts') else ''}on confirmation by " \
                    f"<@{m['resolved_by']}>"
        if m.get("action_state") == "orphaned":
            line += " (the bot restarted while its action ran; its plan no longer runs, so it was not offered again)"
        elif m.get("action_interrupted_ts"):
            line += " (the bot restarted while its action ran)"
        if m.get("note") and st in ("skipped", "cancelled"):
            line += f" — {m['note']}"
        lines.append(line)
    out: list[Block] = [blocks.header("Go-live timeline"), blocks.section(lead)]
    out.extend(blocks.section("\n".join(c)) for c in _chunks(lines))
    if earlier:
        counts: dict[str, int] = {}
        for m in earlier:
            counts[m["state"]] = counts.get(m["state"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        out.append(blocks.context(f"Earlier plans: {summary}."))
    if history:
        hist = "\n".join(
            f"`{h['at'][:16].replace('T', ' ')} UTC` {('<@' + h['actor'] + '> ') if h['actor'] else ''}{escape(h['detail'])}"
            for h in history[-10:])
        out.append(blocks.section("*History*\n" + hist))
    plain = [lead.replace("*", "")] + [line.replace("*", "") for line in lines]
    return "Go-live timeline\n" + "\n".join(plain), blocks.fit(out)

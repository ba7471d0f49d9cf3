"""The go-live timeline: the bot plans the launch and announces every milestone by itself.

``/cio golive <when>`` plans T-0 and the milestones (``bot.timeline_plan``); a durable
scheduler posts each one in the launch channel exactly once, restart-safe and safe with
several processes on one database:

1. **claim** (``BEGIN IMMEDIATE``): a due milestone moves ``pending -> claimed`` with this
   process's id and a lease. Nobody else can claim it while the lease runs.
2. **post** to Slack.
3. **record** the message ts in one small UPDATE (``claimed -> posted``), conditional on the
   claim still being ours, before anything else (events, actions, audit).

A process killed between 1 and 2 leaves a claim that nobody posted: when its lease runs
out another process (or this one after a restart) claims it again and posts it, once. A post
that fails (Slack error, timeout) keeps the claim and becomes claimable again after a
backoff. The one window that could double a post is between Slack accepting the message and
step 3 committing (a crash in those microseconds, or Slack's answer lost on the wire). Step 3
is a single autocommit statement right after the answer with nothing in between, so the
window is as small as a write can make it; and every post carries Slack message metadata
naming the milestone, so a later attempt first looks in the channel's recent history
(``conversations.history``) and records the post it finds instead of posting again. Only if
that history cannot be read (Slack down, the ``channels:history`` scope missing) does a retry
post without looking: at least once, never silently never.

Late milestones (downtime, a pause) are posted late and say by how much; an action more
than ``grace_minutes`` late waits for an operator's confirmation.

A milestone's action runs in the process that posted it, recorded with it (``action_worker``,
``action_started_ts``) in the same UPDATE that records the post. A process killed while the action
runs leaves it ``started``: every tick (so also at start-up) looks for actions another process
started more than ``action_lease_seconds`` ago, and one process (compare-and-set) moves each to
the late actions' path: ``awaiting`` an operator, with a notice in the milestone's thread saying
that the bot restarted while running it, that it is not known whether it finished, and offering
Run / Skip; the milestone's own message says so too (updated in place), and later who answered.
It is never re-run by itself: the checks may have half-run, and the operator decides.
A run the operator starts (Run) is recorded the same way (worker, start), so a process killed
during it is found the same way, and a new notice asks again. An interrupted action of a plan that
no longer runs (cancelled, or replaced by a newer plan) is recorded (history, audit) and offered
to nobody: no notice, no buttons.

A rollback pauses the timeline (``traffic.rolled_back``); ``/cio golive resume`` resumes it.

Events: publishes ``timeline.milestone`` after each post and ``timeline.action`` for the
milestone's action (``readiness_check:staging``, ``smoke_test``, ``review``); subscribes to
``traffic.rolled_back``. Ramp milestones read ``services.health`` and offer the
``traffic_ramp_request`` button (the traffic domain handles it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import OPERATOR_ID
from bot.errors import UserError
from bot.providers.http import ProviderError
from bot.status import StatusSection
from bot.timeline_plan import MAX_AHEAD, MIN_LEAD, TimelineConfig, When, human, parse_when
from bot.timeline_render import (
    Gate,
    escape,
    interrupted_blocks,
    interrupted_milestone_blocks,
    interrupted_resolved_blocks,
    milestone_blocks,
    plan_blocks,
    resolved_blocks,
    timeline_view,
    when,
)

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

#: Slack message metadata event type that marks a milestone's post (to find it after a crash)
METADATA_EVENT = "cio_timeline_milestone"
#: ... and marks the notice in a milestone's thread that its action was interrupted
NOTICE_EVENT = "cio_timeline_interrupted"


@dataclass(frozen=True)
class Outcome:
    """What a command did: a sentence for the person who asked."""

    text: str


class TimelineService:
    def __init__(self, services: Services, config: TimelineConfig) -> None:
        self.services = services
        self.config = config
        self.repo = services.store.timeline
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tick_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        #: called after a milestone is claimed and before it is posted; None in production
        #: (``bot.timeline_worker`` sets it to hold a claim so a test can kill the process there)
        self.after_claim: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        #: called after Slack accepted a post and before it is recorded; None in production
        self.after_post: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        #: called when a milestone's action has started (and is recorded so) and before it is
        #: published; None in production (a test holds it there to kill the process mid-action)
        self.in_action: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self.services.clock

    def _now_iso(self) -> str:
        return self.clock.now().astimezone(UTC).isoformat(timespec="seconds")

    def channel(self, channel_id: str) -> str:
        return self.services.settings.launch_channel or channel_id

    def current(self, channel_id: str) -> dict[str, Any] | None:
        return self.repo.for_channel(self.channel(channel_id))

    async def _post(self, channel: str, text: str, blocks: Any) -> str | None:
        try:
            return await self.services.slack.post_message(channel, text, blocks)
        except ProviderError as exc:
            log.warning("timeline announcement not posted: %s", exc)
            return None

    # -- planning -----------------------------------------------------------------------------------
    async def plan(self, *, channel_id: str, user_id: str, text: str) -> Outcome:
        """Plan T-0 (or move the current plan). Nothing changes unless every check passes."""
        channel = self.channel(channel_id)
        now = self.clock.now()
        chosen = parse_when(text, default_zone=self.services.settings.timezone_name, now=now)
        t0 = chosen.t0
        if t0 <= now:
            raise UserError(f"That T-0 ({when(t0.timestamp(), chosen.zone)}) is in the past; give a future time.")
        if t0 - now > MAX_AHEAD:
            raise UserError("That T-0 is more than a year away; plan a launch within the next 12 months.")
        existing = self.current(channel)
        if existing and existing["state"] != "cancelled":
            return await self._replan(existing, chosen, channel=channel, user_id=user_id, now=now)
        specs = self.config.plan()
        first = specs[0]
        if t0 + timedelta(seconds=first.offset_s) <= now + MIN_LEAD:
            earliest = now + MIN_LEAD - timedelta(seconds=first.offset_s)
            raise UserError(
                f"T-0 {when(t0.timestamp(), chosen.zone)} is too close for the plan: its first milestone, "
                f"{first.label} ({first.name}), would already be due; choose a T-0 after "
                f"{when(earliest.timestamp(), chosen.zone)}, or shorten the plan in CIO_CONFIG [timeline].")
        launch = self.services.store.launches.ensure(channel, user_id, timezone=chosen.zone)
        rows = []
        for position, spec in enumerate(specs):
            due = t0 + timedelta(seconds=spec.offset_s)
            rows.append({"position": position, "key": spec.key, "kind": spec.kind, "label": spec.label,
                         "name": spec.name, "offset_s": spec.offset_s, "owners": list(spec.owners),
                         "action": spec.action, "ramp_to": spec.ramp_to,
                         "due_at": due.isoformat(timespec="seconds"), "due_ts": due.timestamp()})
        now_iso = self._now_iso()
        with self.services.store.transaction():
            plan_no = self.repo.start_plan(launch_id=launch["id"], channel_id=channel,
                                           t0=t0.isoformat(timespec="seconds"), t0_ts=t0.timestamp(),
                                           timezone=chosen.zone, user_id=user_id, now=now_iso, milestones=rows)
            if plan_no is None:
                raise UserError("Someone planned the go-live a moment ago, so I changed nothing; "
                                "`/cio timeline` shows it and `/cio golive <when>` moves it.")
            self.repo.log(launch["id"], plan_no, at=now_iso, actor=user_id, kind="planned",
                          detail=f"planned T-0 {_fmt(t0, chosen.zone)} ({len(rows)} milestones)")
        self._kick.set()
        posted = await self._post_plan(launch["id"], user_id=user_id, moved_from=None)
        where = f"<#{channel}>"
        return Outcome(f"Planned: T-0 {when(t0.timestamp(), chosen.zone)}, {len(rows)} milestones"
                       + (f"; the plan is posted in {where}." if posted else
                          f"; I could not post the plan in {where} (see `/cio timeline`)."))

    async def _replan(self, timeline: dict[str, Any], chosen: When, *, channel: str, user_id: str,
                      now: datetime) -> Outcome:
        launch_id = timeline["launch_id"]
        t0 = chosen.t0
        if abs(timeline["t0_ts"] - t0.timestamp()) < 1 and timeline["timezone"] == chosen.zone:
            return Outcome(f"T-0 is already {when(t0.timestamp(), chosen.zone)}; nothing changed.")
        old_t0 = timeline["t0_ts"]
        now_iso = self._now_iso()
        with self.services.store.transaction():
            fresh = self.repo.get(launch_id)
            if fresh is None or fresh["state"] == "cancelled" or fresh["plan_no"] != timeline["plan_no"]:
                raise UserError("The go-live plan changed a moment ago, so I changed nothing; "
                                "check `/cio timeline` and try again.")
            milestones = self.repo.milestones(launch_id, timeline["plan_no"])
            pending = [m for m in milestones if m["state"] == "pending"]
            moves = {}
            for m in pending:
                due = t0 + timedelta(seconds=m["offset_s"])
                if due <= now + MIN_LEAD:
                    raise UserError(
                        f"T-0 {when(t0.timestamp(), chosen.zone)} is too close for the plan: the pending milestone "
                        f"{m['label']} ({m['name']}) would already be due; choose a T-0 after "
                        f"{when((now + MIN_LEAD - timedelta(seconds=m['offset_s'])).timestamp(), chosen.zone)}.")
                moves[m["id"]] = (due.isoformat(timespec="seconds"), due.timestamp())
            self.repo.move(launch_id, t0=t0.isoformat(timespec="seconds"), t0_ts=t0.timestamp(),
                           timezone=chosen.zone, now=now_iso, due=moves)
            self.repo.log(launch_id, timeline["plan_no"], at=now_iso, actor=user_id, kind="replanned",
                          detail=f"moved T-0 from {_fmt_ts(old_t0, timeline['timezone'])} to "
                                 f"{_fmt(t0, chosen.zone)} ({len(moves)} pending milestones moved)")
        self._kick.set()
        posted = await self._post_plan(launch_id, user_id=user_id, moved_from=old_t0)
        kept = len(milestones) - len(pending)
        went_live = any(m["offset_s"] == 0 and m["state"] not in ("pending", "claimed") for m in milestones)
        return Outcome(f"Moved T-0 to {when(t0.timestamp(), chosen.zone)}: {len(moves)} pending milestones moved"
                       + (f", {kept} kept as they were" if kept else "")
                       + (f"; posted in <#{channel}>." if posted else f"; I could not post it in <#{channel}>.")
                       + (" T-0 itself had already come due; to run the whole plan again, `/cio golive cancel` "
                          "and plan anew." if went_live else ""))

    async def _post_plan(self, launch_id: int, *, user_id: str, moved_from: float | None) -> bool:
        timeline = self.repo.get(launch_id)
        assert timeline is not None
        milestones = self.repo.milestones(launch_id, timeline["plan_no"])
        text, blocks = plan_blocks(timeline, milestones, user_id=user_id, grace_s=self.config.grace_s,
                                   moved_from=moved_from, now=self.clock.timestamp())
        ts = await self._post(timeline["channel_id"], text, blocks)
        if ts:
            self.repo.set_plan_message(launch_id, ts)
        return ts is not None

    async def cancel(self, *, channel_id: str, user_id: str) -> Outcome:
        timeline = self.current(channel_id)
        if timeline is None or timeline["state"] == "cancelled":
            raise UserError("There is no go-live planned here to cancel; `/cio timeline` shows the history.")
        now_iso = self._now_iso()
        with self.services.store.transaction():
            if not self.repo.set_state(timeline["launch_id"], "cancelled", expect=("active", "paused"), now=now_iso):
                raise UserError("The go-live was cancelled a moment ago by someone else; nothing more to do.")
            n = self.repo.cancel_pending(timeline["launch_id"], timeline["plan_no"],
                                         f"cancelled by <@{user_id}>")
            self.repo.log(timeline["launch_id"], timeline["plan_no"], at=now_iso, actor=user_id, kind="cancelled",
                          detail=f"cancelled the go-live planned for {_fmt_ts(timeline['t0_ts'], timeline['timezone'])}"
                                 f" ({n} pending milestones cancelled)")
        text = (f":x: <@{user_id}> cancelled the go-live planned for {when(timeline['t0_ts'], timeline['timezone'])}: "
                f"{n} pending milestones will not fire. What already happened stays in `/cio timeline`; "
                "plan again with `/cio golive <when>`.")
        await self._post(timeline["channel_id"], text, None)
        return Outcome(f"Cancelled: {n} pending milestones will not fire.")

    async def resume(self, *, channel_id: str, user_id: str) -> Outcome:
        timeline = self.current(channel_id)
        if timeline is None or timeline["state"] == "cancelled":
            raise UserError("There is no go-live planned here; plan one with `/cio golive <when>`.")
        if timeline["state"] == "active":
            raise UserError("The timeline is not paused; nothing to resume.")
        now = self.clock.timestamp()
        now_iso = self._now_iso()
        with self.services.store.transaction():
            if not self.repo.set_state(timeline["launch_id"], "active", expect=("paused",), now=now_iso):
                raise UserError("The timeline was resumed a moment ago by someone else; nothing more to do.")
            self.repo.log(timeline["launch_id"], timeline["plan_no"], at=now_iso, actor=user_id, kind="resumed",
                          detail="resumed the timeline")
        missed = [m for m in self.repo.milestones(timeline["launch_id"], timeline["plan_no"])
                  if m["state"] == "pending" and m["due_ts"] <= now]
        upcoming = [m for m in self.repo.milestones(timeline["launch_id"], timeline["plan_no"])
                    if m["state"] == "pending" and m["due_ts"] > now]
        parts = [f":arrow_forward: <@{user_id}> resumed the go-live timeline."]
        if missed:
            parts.append(f"{len(missed)} milestone(s) came due during the pause ("
                         + ", ".join(m["label"] for m in missed) + "): they are posted now, late; an action more "
                         f"than {human(self.config.grace_s)} late waits for an operator's confirmation.")
        if upcoming:
            nxt = upcoming[0]
            parts.append(f"Next: {nxt['label']} {nxt['name']}, {when(nxt['due_ts'], timeline['timezone'])}.")
        text = " ".join(parts)
        await self._post(timeline["channel_id"], text, None)
        self._kick.set()
        return Outcome("Resumed." + (f" {len(missed)} missed milestone(s) are posted now." if missed else ""))

    async def on_rolled_back(self, payload: dict[str, Any]) -> None:
        """``traffic.rolled_back``: pause, so no milestone offers more traffic after a rollback."""
        launch_id = payload.get("launch_id")
        timeline = self.repo.get(int(launch_id)) if launch_id else None
        if timeline is None and payload.get("channel_id"):
            timeline = self.current(str(payload["channel_id"]))
        if timeline is None or timeline["state"] != "active":
            return
        actor = str(payload.get("actor") or "")
        if not OPERATOR_ID.match(actor):
            actor = ""
        reason = str(payload.get("reason") or "")
        now_iso = self._now_iso()
        with self.services.store.transaction():
            if not self.repo.set_state(timeline["launch_id"], "paused", expect=("active",), now=now_iso,
                                       reason="after a rollback" + (f": {reason}" if reason else "")):
                return
            self.repo.log(timeline["launch_id"], timeline["plan_no"], at=now_iso, actor=actor, kind="paused",
                          detail="paused by the rollback" + (f" ({reason})" if reason else ""))
        pending = [m for m in self.repo.milestones(timeline["launch_id"], timeline["plan_no"])
                   if m["state"] == "pending"]
        text = ":double_vertical_bar: The go-live timeline is *paused* after the rollback" + \
            (f" by <@{actor}>" if actor else "") + (f" ({escape(reason)})" if reason else "") + ": "
        if pending:
            nxt = pending[0]
            text += (f"{len(pending)} pending milestone(s) will not fire (next was {nxt['label']} {nxt['name']}, "
                     f"{when(nxt['due_ts'], timeline['timezone'])}). ")
        else:
            text += "no milestone is pending. "
        text += ("When traffic is healthy again, a launch operator resumes with `/cio golive resume` "
                 "(or moves T-0 with `/cio golive <when>`).")
        await self._post(timeline["channel_id"], text, None)

    # -- late actions -------------------------------------------------------------------------------
    def _waiting(self, value: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if not value.isdigit() or (m := self.repo.milestone(int(value))) is None:
            raise UserError("This button does not belong to a milestone I know; see `/cio timeline`.")
        timeline = self.repo.get(m["launch_id"])
        assert timeline is not None
        return m, timeline

    async def run_late(self, *, value: str, user_id: str) -> Outcome:
        m, timeline = self._waiting(value)
        if m["state"] != "awaiting":
            who = f" by <@{m['resolved_by']}>" if m.get("resolved_by") else ""
            raise UserError(f"{m['label']} was already answered{who}; nothing was run again.")
        if timeline["plan_no"] != m["plan_no"] or timeline["state"] != "active":
            state = "cancelled" if timeline["state"] == "cancelled" or timeline["plan_no"] != m["plan_no"] else "paused"
            raise UserError(f"The timeline is {state}, so {m['label']} was not run; "
                            + ("resume it first with `/cio golive resume`." if state == "paused" else
                               "plan again with `/cio golive <when>`."))
        now_iso = self._now_iso()
        started = self.clock.timestamp()
        # recorded as run by this process from now, like an automatic run: a kill during it is found too
        if not self.repo.resolve_waiting(m["id"], state="posted", action_state="started", user_id=user_id,
                                         now=now_iso, worker=self.worker_id, started_ts=started):
            raise UserError(f"{m['label']} was answered a moment ago by someone else; nothing was run again.")
        self.repo.log(m["launch_id"], m["plan_no"], at=now_iso, actor=user_id, kind="confirmed",
                      detail=f"ran the interrupted {m['label']} again ({m['action']})"
                      if m.get("action_interrupted_ts") else f"ran the late {m['label']} ({m['action']})")
        await self._resolved_message(m, timeline, user_id=user_id, ran=True)
        self.services.spawn(self._run_action(m, m["message_ts"], timeline["channel_id"], final="confirmed",
                                             started_ts=started),
                            name=f"timeline-action-{m['id']}")
        return Outcome(f"Running {m['label']} ({m['name']}) now; results follow in its thread.")

    async def skip_late(self, *, value: str, user_id: str) -> Outcome:
        m, timeline = self._waiting(value)
        now_iso = self._now_iso()
        if not self.repo.resolve_waiting(m["id"], state="skipped", action_state="declined", user_id=user_id,
                                         now=now_iso):
            raise UserError(f"{m['label']} was already answered; nothing changed.")
        self.repo.log(m["launch_id"], m["plan_no"], at=now_iso, actor=user_id, kind="skipped",
                      detail=f"skipped the interrupted {m['label']} ({m['action']})"
                      if m.get("action_interrupted_ts") else f"skipped the late {m['label']} ({m['action']})")
        await self._resolved_message(m, timeline, user_id=user_id, ran=False)
        return Outcome(f"Skipped {m['label']} ({m['name']}).")

    async def _resolved_message(self, m: dict[str, Any], timeline: dict[str, Any], *, user_id: str,
                                ran: bool) -> None:
        """Take the buttons away and say who answered: on the milestone's message (a late action's
        buttons were there), and for an action interrupted by a restart also on the thread notice
        (which had the buttons)."""
        at_ts = self.clock.timestamp()
        interrupted = bool(m.get("action_interrupted_ts"))
        if interrupted and m.get("action_notice_ts"):
            text, blocks = interrupted_resolved_blocks(m, timeline, user_id=user_id, ran=ran, at_ts=at_ts)
            await self._update(timeline["channel_id"], m["action_notice_ts"], text, blocks,
                               what=f"the notice with {m['label']}'s buttons")
        text, blocks = resolved_blocks(m, timeline, user_id=user_id, ran=ran, at_ts=at_ts, interrupted=interrupted)
        await self._update(timeline["channel_id"], m["message_ts"], text, blocks, what=f"{m['label']}'s message")

    async def _update(self, channel: str, ts: str, text: str, blocks: Any, *, what: str) -> bool:
        """chat.update; a failure is logged and the caller goes on (the record is in the database)."""
        try:
            await asyncio.wait_for(self.services.slack.update_message(channel, ts, text, blocks),
                                   self.config.post_timeout_s)
        except (ProviderError, TimeoutError) as exc:
            log.warning("could not update %s: %s", what, exc)
            return False
        return True

    # -- interrupted actions ------------------------------------------------------------------------
    async def recover_interrupted(self) -> int:
        """Actions another process started and never finished within ``action_lease_s`` (it was killed,
        or a deploy stopped it): not re-run, but handed to an operator with a notice in the milestone's
        thread, and the milestone's message says so. Only one process wins each (compare-and-set). One
        of a plan that no longer runs is recorded and offered to nobody. Returns how many notices
        were posted."""
        now = self.clock.timestamp()
        posted = 0
        for m in self.repo.interrupted_actions(now=now, worker=self.worker_id,
                                               action_lease_s=self.config.action_lease_s):
            now_iso = self._now_iso()
            with self.services.store.transaction():
                if self.repo.take_orphaned(m["id"], self.worker_id, now=now,
                                           action_lease_s=self.config.action_lease_s):
                    self._record_orphaned(m, now_iso)
                    continue
                if m["state"] == "posted":
                    if not self.repo.take_interrupted(m["id"], self.worker_id, now=now,
                                                      action_lease_s=self.config.action_lease_s,
                                                      notice_lease_s=self.config.lease_s):
                        continue  # another process took it a moment ago, or it finished after all
                    self._record_interrupted(m, now_iso)
                elif not self.repo.retake_notice(m["id"], now=now, notice_lease_s=self.config.lease_s):
                    continue
            if m["state"] == "posted":
                log.warning("milestone %s: its action %s was started by %s and never finished; waiting for an "
                            "operator", m["label"], m["action"], m.get("action_worker") or "an earlier version")
            fresh = self.repo.milestone(m["id"])
            if fresh is not None and await self._post_interrupted_notice(fresh, retake=m["state"] != "posted"):
                posted += 1
        return posted

    def _record_interrupted(self, m: dict[str, Any], now_iso: str) -> None:
        started = m.get("action_started_ts") or m.get("posted_ts")
        rerun = f" (run again on confirmation by <@{m['resolved_by']}>)" if m.get("resolved_by") else ""
        self.repo.log(m["launch_id"], m["plan_no"], at=now_iso, actor="", kind="interrupted",
                      detail=f"the bot restarted while running {m['label']} ({m['action']}){rerun}; not "
                             "known whether it finished: waiting for an operator to run it again or skip it")
        timeline = self.repo.get(m["launch_id"])
        self.services.store.audit.record(
            user_id=None, channel_id=timeline["channel_id"] if timeline else None, kind="system",
            action=f"timeline {m['label']}", outcome="action interrupted by a restart; waiting for an operator",
            detail={"milestone": m["key"], "action": m["action"], "worker": m.get("action_worker"),
                    "started_ts": started, "confirmed_by": m.get("resolved_by"), "message_ts": m["message_ts"],
                    "found_by": self.worker_id})

    def _record_orphaned(self, m: dict[str, Any], now_iso: str) -> None:
        """An interrupted action of a cancelled or replaced plan: a history note and an audit line, no
        post; nobody is asked to run an action of a plan that no longer exists."""
        timeline = self.repo.get(m["launch_id"])
        gone = "replaced by a newer plan" if timeline and timeline["plan_no"] != m["plan_no"] else "cancelled"
        self.repo.log(m["launch_id"], m["plan_no"], at=now_iso, actor="", kind="interrupted",
                      detail=f"the bot restarted while running {m['label']} ({m['action']}) of a plan since "
                             f"{gone}; not known whether it finished, and not offered to run again")
        self.services.store.audit.record(
            user_id=None, channel_id=timeline["channel_id"] if timeline else None, kind="system",
            action=f"timeline {m['label']}", outcome=f"action interrupted by a restart; its plan was {gone}, so "
                                                     "it is not offered to anyone",
            detail={"milestone": m["key"], "action": m["action"], "plan_no": m["plan_no"],
                    "worker": m.get("action_worker"), "started_ts": m.get("action_started_ts") or m.get("posted_ts"),
                    "message_ts": m["message_ts"], "found_by": self.worker_id})
        log.warning("milestone %s: its action %s never finished, and its plan was %s; recorded, not offered",
                    m["label"], m["action"], gone)

    async def _post_interrupted_notice(self, m: dict[str, Any], *, retake: bool = False) -> bool:
        timeline = self.repo.get(m["launch_id"])
        assert timeline is not None
        text, blocks = interrupted_blocks(m, timeline, started_ts=m.get("action_started_ts") or m.get("posted_ts"))
        # marks the notice of this interruption, so that a post whose answer was lost is found
        meta = {"event_type": NOTICE_EVENT,
                "event_payload": {"milestone_id": m["id"], "interrupted_ts": m.get("action_interrupted_ts")}}
        try:
            ts = await self._earlier_notice(timeline["channel_id"], m["message_ts"], meta) if retake else None
            ts = ts or await asyncio.wait_for(
                self.services.slack.post_message(timeline["channel_id"], text, blocks, thread_ts=m["message_ts"],
                                                 metadata=meta, retry_unsafe=False),
                self.config.post_timeout_s)
        except (ProviderError, TimeoutError) as exc:
            # the notice's lease runs out and the next tick (here or elsewhere) posts it
            log.warning("the notice about %s's interrupted action was not posted (%s); retrying in %.0f s",
                        m["label"], exc, self.config.lease_s)
            return False
        self.repo.record_notice(m["id"], ts)
        # the milestone's own message: its status line says so (once answered, _resolved_message
        # says who answered how); not if an operator answered in the meantime
        fresh = self.repo.milestone(m["id"])
        if fresh is not None and fresh["state"] == "awaiting" and fresh["action_notice_ts"] == ts:
            text, blocks = interrupted_milestone_blocks(fresh, timeline)
            await self._update(timeline["channel_id"], fresh["message_ts"], text, blocks,
                               what=f"{m['label']}'s message with its interrupted action")
        return True

    # -- the scheduler ------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Post every milestone that is due now (catching up in order). Returns how many were posted."""
        async with self._tick_lock:
            try:
                await self.recover_interrupted()
            except Exception:
                log.exception("looking for interrupted milestone actions failed")
            posted = 0
            limit = asyncio.Semaphore(self.config.concurrency)

            async def one(m: dict[str, Any]) -> bool:
                async with limit:
                    try:
                        return await self._fire(m)
                    except Exception:
                        log.exception("milestone %s of launch %s failed", m["key"], m["launch_id"])
                        self.repo.retry_later(m["id"], self.worker_id, retry_at=self.clock.timestamp() + 30,
                                              error="internal error")
                        return False

            while True:
                batch = self.repo.claim_due(now=self.clock.timestamp(), worker=self.worker_id,
                                            lease_s=self.config.lease_s, limit=self.config.batch)
                if not batch:
                    return posted
                results = await asyncio.gather(*(one(m) for m in batch))
                posted += sum(results)

    async def run(self) -> None:
        """The scheduler loop: tick, then sleep until the next milestone (or a new plan)."""
        while True:
            self._kick.clear()  # a plan made while we tick sets it again: no wake-up is lost
            try:
                await self.tick()
            except Exception:
                log.exception("timeline tick failed")
            now = self.clock.timestamp()
            nxt = self.repo.next_wakeup()
            delay = self.config.tick_s if nxt is None else min(self.config.tick_s, max(0.05, nxt - now))
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            kicked = asyncio.ensure_future(self._kick.wait())
            try:
                await asyncio.wait({sleeper, kicked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, kicked):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _gate(self, launch_id: int) -> Gate:
        return Gate(await self.services.health.findings(launch_id))

    async def _fire(self, m: dict[str, Any]) -> bool:
        timeline = self.repo.get(m["launch_id"])
        assert timeline is not None
        now = self.clock.timestamp()
        late = max(0.0, now - m["due_ts"])
        if m["kind"] == "heads_up" and now >= timeline["t0_ts"]:
            self.repo.finish_unposted(m["id"], self.worker_id, state="skipped",
                                      note="T-0 had passed when the heads-up came due")
            return False
        wait = bool(m["action"]) and not m["ramp_to"] and late > self.config.grace_s
        try:
            gate = await self._gate(m["launch_id"]) if m["ramp_to"] else None
            text, blocks = milestone_blocks(m, timeline, late_s=late, grace_s=self.config.grace_s,
                                            wait_for_confirmation=wait, gate=gate)
            if self.after_claim is not None:
                await self.after_claim(m)
            if not self.repo.still_claimed(m["id"], self.worker_id):
                return False  # our lease ran out while we prepared; whoever claimed it next posts it
            ts = await self._earlier_post(m, timeline["channel_id"]) if m["attempts"] > 1 else None
        except asyncio.CancelledError:
            # stopping (SIGTERM, deploy) before anything was sent: hand the milestone back at once,
            # so the next process does not wait for the lease to run out
            self.repo.release(m["id"], self.worker_id)
            raise
        if ts is None:
            try:
                ts = await asyncio.wait_for(
                    self.services.slack.post_message(timeline["channel_id"], text, blocks, metadata={
                        "event_type": METADATA_EVENT,
                        "event_payload": {"milestone_id": m["id"], "launch_id": m["launch_id"], "key": m["key"]},
                    }, retry_unsafe=False),
                    self.config.post_timeout_s)
            except (ProviderError, TimeoutError) as exc:
                retry = min(300.0, 5.0 * 2 ** min(m["attempts"] - 1, 6))
                self.repo.retry_later(m["id"], self.worker_id, retry_at=self.clock.timestamp() + retry,
                                      error=str(exc) if isinstance(exc, ProviderError) else "timed out")
                log.warning("milestone %s not posted (attempt %d), retrying in %.0f s: %s", m["label"],
                            m["attempts"], retry, exc)
                return False
            if self.after_post is not None:
                await self.after_post(m)
        # Slack has the message: record it at once (the only double-post window ends here).
        action_state = "waiting" if wait else ("started" if m["action"] and not m["ramp_to"] else "none")
        posted_ts = self.clock.timestamp()
        if not self.repo.mark_posted(m["id"], self.worker_id, message_ts=ts, posted_ts=posted_ts,
                                     late_s=late, state="awaiting" if wait else "posted", action_state=action_state):
            log.error("milestone %s was posted but its claim had passed to another process (lease %.0f s too "
                      "short for this post?)", m["label"], self.config.lease_s)
            return True
        self.services.store.audit.record(
            user_id=None, channel_id=timeline["channel_id"], kind="system", action=f"timeline {m['label']}",
            outcome="waiting for confirmation" if wait else ("posted late" if late >= 60 else "posted"),
            detail={"milestone": m["key"], "late_s": round(late, 1), "message_ts": ts})
        self.services.spawn(self.services.events.publish("timeline.milestone", {
            "launch_id": m["launch_id"], "milestone": m["key"], "name": m["name"], "label": m["label"],
            "channel_id": timeline["channel_id"], "thread_ts": ts, "late_seconds": round(late, 1),
        }), name=f"timeline-milestone-{m['id']}")
        if action_state == "started":
            self.services.spawn(self._run_action(m, ts, timeline["channel_id"], final="done", started_ts=posted_ts),
                                name=f"timeline-action-{m['id']}")
        return True

    async def _earlier_notice(self, channel: str, thread_ts: str, meta: dict[str, Any]) -> str | None:
        """An earlier attempt at this notice may have reached Slack with its answer lost (a timeout,
        a process killed right after): find it in the milestone's thread instead of posting again.
        If the thread cannot be read, the error goes up and the notice waits for the next try."""
        for message in await asyncio.wait_for(self.services.slack.thread_replies(channel, thread_ts),
                                              self.config.post_timeout_s):
            found = message.get("metadata") or {}
            if found.get("event_type") == meta["event_type"] and found.get("event_payload") == meta["event_payload"]:
                log.info("the notice about milestone %s was already posted (ts %s); not posting it again",
                         meta["event_payload"]["milestone_id"], message.get("ts"))
                return str(message["ts"])
        return None

    async def _earlier_post(self, m: dict[str, Any], channel: str) -> str | None:
        """An earlier attempt (a process killed after Slack accepted its post, or an answer lost on
        the wire) may have posted this milestone: find it by its metadata instead of posting again.
        If the history cannot be read, the milestone is posted (at least once beats never)."""
        try:
            messages = await asyncio.wait_for(self.services.slack.recent_messages(channel),
                                              self.config.post_timeout_s)
        except (ProviderError, TimeoutError) as exc:
            log.warning("could not look for an earlier post of %s (%s); posting it", m["label"], exc)
            return None
        for message in messages:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and payload.get("milestone_id") == m["id"]:
                log.info("milestone %s was already posted by an earlier attempt (ts %s); not posting it again",
                         m["label"], message.get("ts"))
                return str(message["ts"])
        return None

    async def _run_action(self, m: dict[str, Any], thread_ts: str, channel_id: str, *, final: str,
                          started_ts: float) -> None:
        """Run the action this process recorded as started at ``started_ts``; ``final`` (``done``, or
        ``confirmed`` for a run on an operator's confirmation) once it finished."""
        if self.in_action is not None:
            await self.in_action(m)
        await self.services.events.publish("timeline.action", {
            "launch_id": m["launch_id"], "milestone": m["key"], "action": m["action"],
            "channel_id": channel_id, "thread_ts": thread_ts,
        })
        if not self.repo.finish_action(m["id"], final, worker=self.worker_id, started_ts=started_ts):
            log.warning("%s's action finished after another process took it for interrupted (it ran longer "
                        "than action_lease_seconds, %.0f s); that process handed it to an operator (or, its plan "
                        "gone, to nobody)", m["label"], self.config.action_lease_s)

    # -- reading ------------------------------------------------------------------------------------
    def view(self, channel_id: str) -> tuple[str, list[Any]]:
        timeline = self.current(channel_id)
        if timeline is None:
            return timeline_view(None, [], [], [], now=self.clock.timestamp())
        rows = self.repo.milestones(timeline["launch_id"])
        current = [m for m in rows if m["plan_no"] == timeline["plan_no"]]
        earlier = [m for m in rows if m["plan_no"] != timeline["plan_no"]]
        return timeline_view(timeline, current, earlier, self.repo.history(timeline["launch_id"]),
                             now=self.clock.timestamp())

    async def status_section(self, launch: dict[str, Any] | None, channel_id: str) -> StatusSection:
        timeline = self.repo.get(launch["id"]) if launch else self.current(channel_id)
        if timeline is None:
            return StatusSection("Go-live timeline", ["No go-live planned: `/cio golive <when>`."])
        zone = timeline["timezone"]
        lines = [f"T-0 {when(timeline['t0_ts'], zone)} ({zone})"]
        if timeline["state"] == "cancelled":
            return StatusSection("Go-live timeline", lines + [":x: cancelled; `/cio golive <when>` plans again."])
        if timeline["state"] == "paused":
            lines.append(f":double_vertical_bar: paused {escape(timeline.get('paused_reason') or '')}; "
                         "`/cio golive resume` resumes.")
        now = self.clock.timestamp()
        milestones = self.repo.milestones(timeline["launch_id"], timeline["plan_no"])
        open_ = [m for m in milestones if m["state"] in ("pending", "claimed")]
        waiting = [m for m in milestones if m["state"] == "awaiting"]
        if open_:
            nxt = open_[0]
            rel = f"in {human(nxt['due_ts'] - now)}" if nxt["due_ts"] > now else f"due {human(now - nxt['due_ts'])} ago"
            lines.append(f"Next: *{nxt['label']}* {nxt['name']}, {when(nxt['due_ts'], zone)} ({rel})")
        else:
            lines.append("Every milestone has come due.")
        for m in waiting:
            if m.get("action_interrupted_ts"):
                lines.append(f":warning: {m['label']}'s action was interrupted by a restart (not known whether it "
                             "finished); it waits for an operator to run it again or skip it.")
            else:
                lines.append(f":raised_hand: {m['label']} waits for an operator to run or skip it.")
        return StatusSection("Go-live timeline", lines)


def _fmt(at: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _fmt_ts(ts: float, zone: str) -> str:
    return _fmt(datetime.fromtimestamp(ts, UTC), zone)


def configure(services: Services) -> None:
    config = TimelineConfig.from_section(services.settings.section("timeline"), services.settings.operators)
    if services.readiness is not None and config.action_lease_s <= services.readiness.config.deadline:
        # a check run still going would be taken for the action of a dead process
        raise services.settings.table("timeline").refuse(
            "action_lease_seconds",
            f"longer than [checks] deadline_seconds ({services.readiness.config.deadline:g} s)",
            config.action_lease_s)
    service = TimelineService(services, config)
    services.timeline = service
    services.events.subscribe("traffic.rolled_back", service.on_rolled_back)
    services.status.register("timeline", service.status_section)
    services.loops["timeline.scheduler"] = service.run

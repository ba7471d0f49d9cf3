"""``cio-bot rehearse``: a complete launch played on the built-in sandbox and a temporary
database, with time compressed.

The rehearsal drives the real bot the way Slack does (signed slash commands and button
clicks over HTTP through :class:`BotHarness`, signed Customer.io webhooks to the bot's
real endpoint), moves a :class:`FakeClock` from milestone to milestone, and prints the
channel as a transcript. It is a list of named :class:`Step`; each checks what the channel
shows and what the store holds, and the first one that does not behave stops the
rehearsal with a non-zero exit naming it. A step that needs a domain this bot does not
have (``needs``) is reported as skipped, never faked.

``--speed N``: simulated time runs N times faster than real time (the rehearsal pauses
between steps for the simulated gap / N, at most 2 s a step). The default plays a 27-hour
launch in well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bot.clock import FakeClock
from bot.sandbox.harness import Answer, BotHarness
from bot.sandbox.slack import Message
from bot.sandbox.world import SANDBOX_OPERATOR, Sandbox
from bot.textrender import render

OPERATOR_2 = "U0OPERAT2"  # a second launch operator: confirms what the first asks
ONCALL = "U0ONCALL"
START = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
DEFAULT_SPEED = 20000.0
MAX_PAUSE = 2.0
ALERT_ACK, ALERT_RESOLVE = "alerts.ack", "alerts.resolve"


#: the integration's event catalog the readiness checks audit (snake_case names, Unix seconds)
EVENT_CATALOG: dict[str, Any] = {
    "identify": [{"id": "user-123", "attributes": {"email": "ada@example.com", "created_at": 1764547200,
                                                   "plan": "pro"}}],
    "events": [{"name": "order_completed", "timestamp": 1764547200, "data": {"order_id": "A-1", "total": 42.5}},
               {"name": "signed_up", "timestamp": 1764547100, "data": {"source": "web"}}],
}


class StepFailed(Exception):
    """A step did not behave; the message says what was expected and what was seen."""


@dataclass
class Step:
    name: str
    run: Callable[[Rehearsal], Awaitable[None]]
    #: Services attributes the step needs (a domain of the bot); missing -> skipped, said so
    needs: tuple[str, ...] = ()


@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | skipped
    detail: str = ""
    seconds: float = 0.0


def config_text(web_url: str) -> str:
    """CIO_CONFIG of the rehearsal: documentation links on the sandbox web host, thresholds,
    two escalation tiers, the default go-live plan."""
    return f"""
[checks]
update_interval_seconds = 0.05
timeout_seconds = 5
event_catalog = "events.json"

[documentation]
runbook_url = "{web_url}/runbook"
event_catalog_url = "{web_url}/events"
escalation_url = "{web_url}/escalation"

[rollback]
backup_messaging = "The previous email provider stays warm for 30 days"
notification_plan = "Post in #cio-launch and email the support leads"
staging_environment = "staging"

[traffic]
min_soak_minutes = 30

[alerts]
fire_after = 1
resolve_after = 1

[alerts.thresholds]
bounce_rate = "5%"
complaint_rate = "0.1%"
api_error_rate = "1%"
api_p99_latency = "5s"

[[alerts.escalation]]
name = "On-call"
delay_minutes = 0
mentions = ["{ONCALL}"]

[[alerts.escalation]]
name = "Launch lead"
delay_minutes = 10
mentions = ["{OPERATOR_2}"]
"""


class Transcript:
    """The channel (and what only the acting user sees) as readable text."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.lines: list[str] = []

    def emit(self, line: str) -> None:
        self.lines.append(line)
        if self.out is not None:
            print(line, file=self.out, flush=True)

    def message(self, m: Message) -> None:
        if m.kind == "message":
            files = "".join(f" [file: {f.get('name')}]" for f in m.files)
            head = f"#cio-launch{' (thread)' if m.thread_ts else ''} bot:{files}"
        elif m.kind == "update":
            head = "#cio-launch bot (message updated):"
        elif m.kind == "ephemeral":
            head = f"(only visible to {m.user}) bot:"
        else:
            head = "bot:" if m.response_type == "in_channel" else "(only visible to you) bot:"
        lines, buttons = render(m.text, m.blocks)
        self.emit(head)
        for line in lines:
            self.emit("    " + line)
        if buttons:
            self.emit("    " + "  ".join(f"[{b.label}]" for b in buttons))


class Rehearsal:
    def __init__(self, *, speed: float = DEFAULT_SPEED, out: TextIO | None = None, workdir: Path,
                 chart_path: Path | None = None) -> None:
        self.speed = speed
        self.workdir = workdir
        self.chart_path = chart_path
        self.transcript = Transcript(out)
        self.clock = FakeClock(START)
        self.results: list[StepResult] = []
        self.bot: BotHarness | None = None
        self.sandbox: Sandbox | None = None
        self.notes: dict[str, Any] = {}  # what one step leaves for the next
        self._last_sim = START

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> BotHarness:
        self.sandbox = await Sandbox().start()
        self.sandbox.web.pages["/runbook"] = 404  # the readiness failure the rehearsal fixes
        cfg = self.workdir / "cio.toml"
        cfg.write_text(config_text(self.sandbox.web.url))
        (self.workdir / "events.json").write_text(json.dumps(EVENT_CATALOG))
        env = {"CIO_CONFIG": str(cfg), "CIO_OPERATORS": f"{SANDBOX_OPERATOR},{OPERATOR_2}",
               "CIO_TIMEZONE": "UTC"}
        for hook in (w for ws in self.sandbox.customerio.workspaces for w in ws.reporting_webhooks):
            hook["endpoint"] = "https://cio-bot.example.test/webhooks/customerio"
        env["CIO_PUBLIC_URL"] = "https://cio-bot.example.test"
        self.bot = await BotHarness.start(self.workdir / "rehearsal.db", env=env, clock=self.clock,
                                          sandbox=self.sandbox)
        self.bot.slack.watch(self.transcript.message)
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
        if self.sandbox is not None:
            await self.sandbox.stop()

    # -- helpers the steps use ---------------------------------------------------------------------
    @property
    def h(self) -> BotHarness:
        assert self.bot is not None
        return self.bot

    def has(self, domain: str) -> bool:
        return getattr(self.h.services, domain, None) is not None

    async def at(self, when: datetime, label: str = "") -> None:
        """Move the clock to ``when`` (pausing for the compressed gap) and let due work run."""
        gap = (when - self._last_sim).total_seconds()
        if gap > 0 and self.speed > 0:
            await asyncio.sleep(min(MAX_PAUSE, gap / self.speed))
        self._last_sim = max(self._last_sim, when)
        self.clock.set(when)
        rel = when - T0
        sign = "-" if rel.total_seconds() < 0 else "+"
        secs = abs(int(rel.total_seconds()))
        self.transcript.emit(f"  ⏱  {when:%Y-%m-%d %H:%M} UTC (T{sign}{secs // 3600}h{secs % 3600 // 60:02d}m)"
                             + (f" {label}" if label else ""))
        await self.settle()
        if self.has("timeline"):
            await self.h.services.timeline.tick()  # type: ignore[union-attr]
            await self.settle()

    async def settle(self) -> None:
        await asyncio.sleep(0.02)
        await self.h.services.idle(timeout=30)

    async def command(self, text: str, *, user: str = SANDBOX_OPERATOR) -> Answer:
        self.transcript.emit(f"> {text}   (as {user})")
        return await self.h.command(text, user=user)

    async def click(self, message: Message, action_id: str, *, user: str = SANDBOX_OPERATOR,
                    value: str | None = None) -> Answer:
        for button in self.h.buttons(message):
            if button.get("action_id") == action_id and (value is None or button.get("value") == value):
                label = button.get("text", {}).get("text", action_id)
                self.transcript.emit(f"> pressed [{label}]   (as {user})")
                ts = message.ts if message.kind == "message" else None
                return await self.h.press(action_id, button.get("value", ""), user=user, message_ts=ts,
                                          channel=message.channel or self.h.channel)
        raise StepFailed(f"no button {action_id!r} on the message {message.text[:80]!r}")

    def channel(self) -> list[Message]:
        return [m for m in self.h.slack.messages if m.channel == self.h.channel]

    def latest(self, predicate: Callable[[Message], bool], what: str) -> Message:
        for m in reversed(self.h.slack.messages):
            if predicate(m):
                return m
        raise StepFailed(f"the channel shows no {what}")

    def with_button(self, action_id: str, value: str | None = None) -> Message:
        def ok(m: Message) -> bool:
            return any(b.get("action_id") == action_id and (value is None or b.get("value") == value)
                       for b in self.h.buttons(m))
        return self.latest(ok, f"message with a {action_id!r} button" + (f" ({value})" if value else ""))

    @staticmethod
    def expect(condition: Any, what: str) -> None:
        if not condition:
            raise StepFailed(what)

    def flag_percent(self) -> float:
        """What the sandbox LaunchDarkly itself holds now: percent of contexts served ``true``."""
        ld = self.h.sandbox.launchdarkly
        s = self.h.settings
        flag = ld.flags[(s.launchdarkly_project, s.launchdarkly_flag)]
        env = flag["environments"][s.launchdarkly_environment]
        true_index = next(i for i, v in enumerate(flag["variations"]) if v["value"] is True)
        if not env.get("on"):
            return 100.0 if env.get("offVariation") == true_index else 0.0
        fall = env.get("fallthrough") or {}
        if "variation" in fall:
            return 100.0 if fall["variation"] == true_index else 0.0
        weights = {w["variation"]: w["weight"] for w in fall["rollout"]["variations"]}
        return weights.get(true_index, 0) / 1000

    async def ramp(self, percent: int, *, via: Message | None = None) -> None:
        """Ask (command or a milestone's button) as one operator, confirm as the other, and check
        the verified change in the store, in LaunchDarkly and in the channel."""
        if via is None:
            asked = await self.command(f"/cio ramp {percent}")
        else:
            asked = await self.click(via, "traffic_ramp_request", value=str(percent))
        proposal = next((m for m in reversed(asked.responses)
                         if any(b.get("action_id") == "traffic_confirm" for b in self.h.buttons(m))), None)
        self.expect(proposal is not None, f"asking for {percent}% offered no confirmation: {asked.text[:300]!r}")
        assert proposal is not None
        self.expect("passes" in proposal.text + json.dumps(proposal.blocks) or percent == 0,
                    f"the health gate did not pass before {percent}%: {asked.all_text()[:400]}")
        await self.click(proposal, "traffic_confirm", user=OPERATOR_2)
        last = self.h.store.traffic.history(self.launch_id(), 1)
        self.expect(last and last[0]["status"] == "verified" and last[0]["to_pct"] == percent,
                    f"the store does not hold a verified change to {percent}% (found {last[:1]})")
        self.expect(self.flag_percent() == percent,
                    f"LaunchDarkly serves {self.flag_percent()}%, not {percent}%")
        self.expect(any(f"{percent}%" in m.text and ("Verified" in m.text or "verified" in m.text)
                        for m in self.channel()[-4:]),
                    f"the channel shows no verified announcement of {percent}%")

    def launch_id(self) -> int:
        launch = self.h.store.launches.current(self.h.channel)
        self.expect(launch is not None, "there is no current launch in the store")
        assert launch is not None
        return int(launch["id"])

    def milestone_post(self, label: str) -> Message:
        return self.latest(lambda m: m.kind == "message" and m.text.startswith(f"{label} ·"),
                           f"{label} milestone post")

    async def webhooks(self, **counts: int) -> None:
        """Signed Customer.io email reporting webhooks (``sent=400, bounced=8``) to the bot's endpoint."""
        import hashlib
        import hmac

        now = self.clock.timestamp()
        key = self.h.sandbox.webhook_signing_key.encode()
        seq = self.notes.setdefault("event_seq", [0])

        async def post(metric: str) -> int:
            seq[0] += 1
            body = json.dumps({"event_id": f"rehearsal-{seq[0]:07d}", "object_type": "email", "metric": metric,
                               "timestamp": int(now), "data": {"customer_id": f"c{seq[0]}",
                                                                "email_address": f"c{seq[0]}@example.test"}}).encode()
            stamp = str(int(now))
            sig = hmac.new(key, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
            async with self.h.session.post(f"{self.h.url}/webhooks/customerio", data=body, headers={
                    "Content-Type": "application/json", "X-CIO-Timestamp": stamp, "X-CIO-Signature": sig}) as r:
                return r.status

        counts = {metric: n for metric, n in counts.items() if n}
        statuses = []
        for metric, n in counts.items():
            statuses += await asyncio.gather(*(post(metric) for _ in range(n)))
        self.expect(all(s == 200 for s in statuses), f"the webhook endpoint refused events: {set(statuses)}")
        self.transcript.emit("  ⇢ Customer.io webhooks: " + ", ".join(f"{n} {m}" for m, n in counts.items()))
        await self.settle()

    # -- running ---------------------------------------------------------------------------------------
    async def run(self, steps: list[Step]) -> bool:
        for n, step in enumerate(steps, start=1):
            missing = [d for d in step.needs if not self.has(d)]
            if missing:
                self.results.append(StepResult(step.name, "skipped", f"this bot has no {', '.join(missing)}"))
                self.transcript.emit(f"\n── {n}. {step.name}: skipped (this bot has no {', '.join(missing)}) ──")
                continue
            self.transcript.emit(f"\n── {n}. {step.name} ──")
            started = time.perf_counter()
            try:
                await step.run(self)
            except StepFailed as exc:
                self.results.append(StepResult(step.name, "failed", str(exc), time.perf_counter() - started))
                self.transcript.emit(f"✗ step {n} ({step.name}) failed: {exc}")
                return False
            except Exception as exc:
                self.results.append(StepResult(step.name, "failed", f"{type(exc).__name__}: {exc}",
                                               time.perf_counter() - started))
                self.transcript.emit(f"✗ step {n} ({step.name}) failed with {type(exc).__name__}: {exc}")
                return False
            self.results.append(StepResult(step.name, "passed", "", time.perf_counter() - started))
            self.transcript.emit(f"✓ {step.name}")
        return True


# -- the steps ---------------------------------------------------------------------------------------------
async def readiness_fails(r: Rehearsal) -> None:
    await r.command("/cio check credentials documentation monitoring rollback testing")
    report = r.latest(lambda m: m.channel == r.h.channel and "GO" in m.text.upper() and m.kind in ("message", "update"),
                      "readiness report")
    text = report.text + json.dumps(report.blocks)
    r.expect("NO-GO" in text, f"the readiness report should be NO-GO (runbook unreachable): {report.text[:200]}")
    r.expect("documentation.runbook" in text, "the report does not name the failing runbook check")
    run = r.h.store.checks.last_run("production")
    r.expect(run and run["verdict"] == "no-go", f"the store's last run is not no-go: {run}")


async def readiness_fixed(r: Rehearsal) -> None:
    r.transcript.emit("  (the team publishes the runbook page; operators sign off the manual items)")
    assert r.sandbox is not None
    r.sandbox.web.pages["/runbook"] = 200
    for _ in range(10):
        try:
            report = r.with_button("checks.signoff.confirm")
        except StepFailed:
            break
        await r.click(report, "checks.signoff.confirm")
    await r.command("/cio check credentials documentation monitoring rollback testing")
    run = r.h.store.checks.last_run("production")
    r.expect(run and run["verdict"] == "go", f"after the fix the verdict should be GO, the store has {run}")
    report = r.latest(lambda m: m.kind in ("message", "update") and "GO" in m.text.upper(), "readiness report")
    r.expect("NO-GO" not in report.text, f"the channel still shows NO-GO: {report.text[:200]}")


async def plan(r: Rehearsal) -> None:
    await r.at(START, "the day before the launch")
    answer = await r.command(f"/cio golive {T0:%Y-%m-%d %H:%M} UTC")
    milestones = r.h.store.timeline.milestones(r.launch_id())
    r.expect(len([m for m in milestones if m["kind"] == "milestone"]) == 7,
             f"the plan should hold 7 milestones, the store has {len(milestones)}: {answer.text[:200]}")
    r.expect(any("T+24h" in m.text + json.dumps(m.blocks) for m in r.channel()[-3:]) or "T+24h" in answer.all_text(),
             "the channel does not show the plan with its T+24h review")


def _milestone_step(label: str, offset: timedelta, *, check: Callable[[Rehearsal], None] | None = None
                    ) -> Callable[[Rehearsal], Awaitable[None]]:
    async def run(r: Rehearsal) -> None:
        await r.at(T0 + offset, label)
        r.milestone_post(label)
        row = next(m for m in r.h.store.timeline.milestones(r.launch_id()) if m["label"] == label)
        r.expect(row["state"] in ("posted", "awaiting"), f"{label} is {row['state']} in the store, not posted")
        if check is not None:
            check(r)
    return run


def _staging_checked(r: Rehearsal) -> None:
    run = r.h.store.checks.last_run("staging")
    r.expect(run is not None and run["verdict"] == "go",
             f"T-24h's readiness checks against staging should say GO, the store has {run and run['verdict']}")


def _smoke_tested(r: Rehearsal) -> None:
    runs = [x for x in r.h.store.checks.runs(5) if x.get("source") == "timeline"]
    r.expect(len(runs) >= 2 and runs[0]["environment"] == "production" and runs[0]["verdict"] == "go",
             f"T-12h's production smoke test should pass, the store has {runs[:1]}")


async def go_live_10(r: Rehearsal) -> None:
    await r.at(T0, "T-0")
    post = r.milestone_post("T-0")
    await r.ramp(10, via=post)


async def normal_delivery_10(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(minutes=20), "deliveries at 10%")
    await r.webhooks(sent=300, delivered=297, bounced=3)
    await r.at(T0 + timedelta(minutes=40))
    await r.webhooks(sent=300, delivered=298, bounced=2)
    opened = r.h.store.alerts.open_alerts()  # type: ignore[attr-defined]
    r.expect(not opened, f"a normal bounce rate (about 1%) raised an alert: {opened[:1]}")


async def ramp_50(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=1), "T+1h")
    await r.ramp(50, via=r.milestone_post("T+1h"))


def _alert(r: Rehearsal) -> dict[str, Any]:
    row = r.h.store.alerts.get(r.notes["alert_id"])  # type: ignore[attr-defined]
    assert row is not None
    return dict(row)


async def bounce_spike(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=1, minutes=20), "a bounce spike")
    await r.webhooks(sent=400, delivered=340, bounced=60)
    await r.at(T0 + timedelta(hours=1, minutes=21))
    opened = [a for a in r.h.store.alerts.open_alerts() if a["metric"] == "bounce_rate"]  # type: ignore[attr-defined]
    r.expect(opened, "a bounce rate of about 6% over the hour raised no alert")
    r.notes["alert_id"] = opened[0]["id"]
    msg = r.with_button(ALERT_ACK)
    r.expect("bounce" in (msg.text + json.dumps(msg.blocks)).lower(), "the alert message does not name the bounce rate")


async def escalates(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=1, minutes=32), "nobody acknowledged for 11 minutes")
    steps = r.h.store.alerts.escalations(r.notes["alert_id"])  # type: ignore[attr-defined]
    tiers = {s["tier"] for s in steps}
    r.expect(len(tiers) >= 2, f"the alert did not climb to the second escalation tier (tiers {sorted(tiers)})")
    r.expect(any(OPERATOR_2 in m.text + json.dumps(m.blocks) for m in r.channel()[-6:]),
             "the channel does not page the second tier")


async def acknowledged(r: Rehearsal) -> None:
    await r.click(r.with_button(ALERT_ACK), ALERT_ACK)
    row = _alert(r)
    r.expect(row["acknowledged_by"] == SANDBOX_OPERATOR, f"the alert is {row['status']} in the store, not acknowledged")


async def rollback(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=1, minutes=33), "the operators roll back")
    asked = await r.command('/cio rollback "bounce spike at 50%"')
    proposal = next((m for m in reversed(asked.responses)
                     if any(b.get("action_id") == "traffic_confirm" for b in r.h.buttons(m))), None)
    r.expect(proposal is not None, f"/cio rollback offered no confirmation: {asked.text[:200]}")
    assert proposal is not None
    await r.click(proposal, "traffic_confirm", user=OPERATOR_2)
    last = r.h.store.traffic.history(r.launch_id(), 1)[0]
    r.expect(last["kind"] == "rollback" and last["status"] == "verified", f"the rollback is {last['status']}")
    r.expect(r.flag_percent() == 0, f"LaunchDarkly still serves {r.flag_percent()}%")
    if r.has("timeline"):
        tl = r.h.store.timeline.get(r.launch_id())
        r.expect(tl and tl["state"] == "paused", "the timeline did not pause after the rollback")


async def recovered(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=1, minutes=45), "the bad list segment is removed; bounces recover")
    await r.webhooks(sent=1500, delivered=1495, bounced=5)
    await r.at(T0 + timedelta(hours=1, minutes=50))
    if _alert(r)["status"] != "resolved":
        r.transcript.emit("  (the rate is back under the threshold; the on-call operator resolves the alert)")
        await r.click(r.with_button(ALERT_RESOLVE), ALERT_RESOLVE)
    r.expect(_alert(r)["status"] == "resolved", f"the alert is {_alert(r)['status']}, not resolved")


async def resume_50(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=3), "resume")
    if r.has("timeline"):
        await r.command("/cio golive resume")
        tl = r.h.store.timeline.get(r.launch_id())
        r.expect(tl and tl["state"] == "active", "the timeline did not resume")
    await r.ramp(50)


async def delivery_at_50(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=3, minutes=30), "deliveries at 50%")
    await r.webhooks(sent=1500, delivered=1490, bounced=10)


async def full_traffic(r: Rehearsal) -> None:
    await r.at(T0 + timedelta(hours=4), "full traffic")
    try:
        post = r.with_button("traffic_ramp_request", "100")
    except StepFailed:
        post = None
    await r.ramp(100, via=post)


async def delivery_at_100(r: Rehearsal) -> None:
    for hour in (6, 10, 16, 22):
        await r.at(T0 + timedelta(hours=hour), "deliveries at 100%")
        await r.webhooks(sent=800, delivered=796, bounced=4, spammed=1 if hour == 16 else 0)


async def review_t24(r: Rehearsal) -> None:
    before = len(r.h.slack.uploads)
    if r.has("timeline"):
        await r.at(T0 + timedelta(hours=24), "T+24h")
        r.milestone_post("T+24h")
    else:
        await r.at(T0 + timedelta(hours=24), "T+24h")
        await r.command("/cio review")
    review = r.latest(lambda m: m.kind == "message" and m.text.startswith("Launch review"), "launch review")
    body = review.text + json.dumps(review.blocks)
    r.expect("Traffic changes" in body and "rollback" in body, "the review does not list the traffic changes")
    r.expect(len(r.h.slack.uploads) > before, "the review's chart was not uploaded")
    upload = list(r.h.slack.uploads.values())[-1]
    r.expect(upload["data"][:8] == b"\x89PNG\r\n\x1a\n", "the uploaded chart is not a PNG")
    r.expect(any(m.files for m in r.channel()[-3:]), "the channel does not show the chart file")
    if r.chart_path is not None:
        r.chart_path.parent.mkdir(parents=True, exist_ok=True)
        r.chart_path.write_bytes(upload["data"])
        r.transcript.emit(f"  (chart saved to {r.chart_path})")


async def export(r: Rehearsal) -> None:
    from bot.review import build_report, render_markdown

    assert r.h.services.review is not None
    report = build_report(r.h.store, r.h.settings, r.h.services.review.readers, now=r.clock.timestamp(),
                          channel_id=r.h.channel)
    markdown = render_markdown(report)
    path = r.workdir / "review.md"
    path.write_text(markdown)
    traffic = report.section("traffic").figures
    r.expect(traffic["verified"] >= 5 and traffic["rollbacks"] == 1 and traffic["final_pct"] == 100,
             f"the report's traffic figures are off: {traffic.get('verified')} verified, "
             f"{traffic.get('rollbacks')} rollbacks, final {traffic.get('final_pct')}")
    r.expect("## Traffic changes" in markdown, "the markdown export has no traffic section")
    r.transcript.emit(f"  cio-bot review --format markdown → {len(markdown.splitlines())} lines; the first ones:")
    for line in markdown.splitlines()[:12]:
        r.transcript.emit("    " + line)


STEPS: list[Step] = [
    Step("The launch is planned", plan, ("timeline",)),
    Step("Readiness checks find a problem", readiness_fails, ("readiness",)),
    Step("The problem is fixed and the checks pass", readiness_fixed, ("readiness",)),
    Step("T-24h: final staging validation", _milestone_step("T-24h", timedelta(hours=-24), check=_staging_checked),
         ("timeline",)),
    Step("T-12h: production smoke tests", _milestone_step("T-12h", timedelta(hours=-12), check=_smoke_tested),
         ("timeline",)),
    Step("T-1h: go/no-go", _milestone_step("T-1h", timedelta(hours=-1)), ("timeline",)),
    Step("T-0: 10% of traffic, verified", go_live_10, ("timeline", "traffic")),
    Step("Deliveries at 10% are healthy", normal_delivery_10, ("alerts",)),
    Step("T+1h: 50% of traffic, verified", ramp_50, ("timeline", "traffic")),
    Step("A bounce spike raises an alert", bounce_spike, ("alerts",)),
    Step("Unacknowledged, the alert climbs an escalation tier", escalates, ("alerts",)),
    Step("The alert is acknowledged", acknowledged, ("alerts",)),
    Step("Rollback to 0%, verified", rollback, ("traffic",)),
    Step("Bounces recover and the alert resolves", recovered, ("alerts",)),
    Step("Resume: 50% again, verified", resume_50, ("traffic",)),
    Step("Deliveries at 50% are healthy", delivery_at_50, ("alerts",)),
    Step("Full traffic: 100%, verified", full_traffic, ("traffic",)),
    Step("A day at 100%", delivery_at_100, ("alerts",)),
    Step("T+24h: the review and its chart", review_t24, ("review",)),
    Step("The review exported as markdown", export, ("review",)),
]


async def rehearse(*, speed: float = DEFAULT_SPEED, out: TextIO | None = None, chart_path: Path | None = None,
                   steps: list[Step] | None = None, workdir: Path | None = None) -> tuple[bool, Rehearsal]:
    """Play the launch; True when every step that could run behaved."""
    with tempfile.TemporaryDirectory(prefix="cio-rehearsal-") as tmp:
        r = Rehearsal(speed=speed, out=out, workdir=workdir or Path(tmp), chart_path=chart_path)
        started = time.perf_counter()
        r.transcript.emit("cio-launchbot rehearsal: a whole launch on the built-in sandbox "
                          "(fake Slack, Customer.io and LaunchDarkly; a temporary database; no accounts).")
        try:
            await r.start()
            ok = await r.run(list(STEPS if steps is None else steps))
        finally:
            await r.stop()
        passed = sum(1 for x in r.results if x.status == "passed")
        skipped = [x for x in r.results if x.status == "skipped"]
        r.transcript.emit("")
        r.transcript.emit(f"Rehearsal {'PASSED' if ok else 'FAILED'}: {passed} step(s) passed"
                          + (f", {len(skipped)} skipped ({'; '.join(f'{x.name}: {x.detail}' for x in skipped)})"
                             if skipped else "")
                          + f", {time.perf_counter() - started:.1f} s.")
        if not ok:
            failed = r.results[-1]
            r.transcript.emit(f"Failed step: {failed.name}: {failed.detail}")
        return ok, r


"""The post-launch review (``/cio review``, T+24h, ``cio-bot review``): a report assembled
from what the bot recorded, plus a chart.

Decoupled like ``/cio status``: the report is a list of sections, each produced by a
registered reader (``ReviewService.register(key, reader)``). A reader gets a
:class:`ReviewContext` (the launch, the time window, the store's read-only review queries)
and returns a :class:`ReviewSection`; a domain whose tables are absent yields a section that
says "not recorded". Readers only read: the review never changes state.

Section keys registered by :func:`configure`: ``timeline``, ``traffic``, ``alerts``,
``readiness``, ``delivery``, ``api``. Another domain may register more (same signature).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

from bot import blocks
from bot.errors import UserError
from bot.providers.http import ProviderError
from bot.store.review import ReviewReader
from bot.textrender import mrkdwn

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services
    from bot.store import Store

log = logging.getLogger(__name__)

NOT_RECORDED = "not recorded"
DELIVERY_METRICS = ["email_sent", "email_delivered", "email_bounced", "email_spammed"]


# -- the report model ---------------------------------------------------------------------------
@dataclass
class ReviewSection:
    key: str
    title: str
    recorded: bool = True
    #: a table: column names and rows of cells (Slack mrkdwn mentions/dates allowed in cells)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    #: sentences under the table
    notes: list[str] = field(default_factory=list)
    #: machine-readable figures (the JSON export)
    figures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def missing(cls, key: str, title: str, why: str) -> ReviewSection:
        return cls(key, title, recorded=False, notes=[f"{NOT_RECORDED}: {why}"])


@dataclass
class ChartSeries:
    """What the chart draws. Times are Unix seconds; rates are fractions."""

    traffic: list[tuple[float, float]] = field(default_factory=list)  # (t, percent) steps
    bounce: list[tuple[float, float]] = field(default_factory=list)  # (t, rate)
    complaint: list[tuple[float, float]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # {at, title, severity}
    bounce_threshold: float = 0.05
    complaint_threshold: float = 0.001
    start: float = 0.0
    end: float = 0.0


@dataclass
class Report:
    launch_id: int
    channel_id: str
    generated_at: float
    start: float
    end: float
    status: str
    sections: list[ReviewSection]
    chart: ChartSeries

    def section(self, key: str) -> ReviewSection:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "launch_id": self.launch_id, "channel_id": self.channel_id, "status": self.status,
            "generated_at": _iso(self.generated_at), "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "sections": {s.key: {"title": s.title, "recorded": s.recorded, "columns": s.columns,
                                 "rows": [[mrkdwn(c) for c in row] for row in s.rows],
                                 "notes": [mrkdwn(n) for n in s.notes], "figures": s.figures}
                         for s in self.sections},
            "chart": asdict(self.chart),
        }


@dataclass
class ReviewContext:
    launch: dict[str, Any]
    start: float
    end: float
    reader: ReviewReader
    settings: Settings
    chart: ChartSeries
    #: verified traffic steps (t, percent), shared by the traffic and delivery readers
    steps: list[tuple[float, float]] = field(default_factory=list)

    @property
    def launch_id(self) -> int:
        return int(self.launch["id"])


Reader = Callable[[ReviewContext], ReviewSection]


# -- formatting helpers ---------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ts(value: Any) -> float | None:
    """An ISO string or a number as Unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def when(ts: float | None) -> str:
    """A date every reader sees in their own zone (UTC in the exports)."""
    if ts is None:
        return "–"
    fallback = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return blocks.user_date(ts, fallback)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s:.0f} s"
    if s < 3600:
        return f"{sign}{s / 60:.0f} min" if s % 60 < 1 or s >= 600 else f"{sign}{int(s // 60)} min {s % 60:.0f} s"
    return f"{sign}{s / 3600:.1f} h"


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def who(user: str | None) -> str:
    if not user:
        return "–"
    return f"<@{user}>" if user[:1] in "UW" else user


# -- readers ------------------------------------------------------------------------------------------
def timeline_section(ctx: ReviewContext) -> ReviewSection:
    title = "Timeline: planned vs actual"
    rows = ctx.reader.milestones(ctx.launch_id)
    if rows is None:
        return ReviewSection.missing("timeline", title, "this bot has no timeline (`/cio golive`) installed.")
    if not rows:
        return ReviewSection.missing("timeline", title, "no plan was made for this launch (`/cio golive`).")
    out = ReviewSection("timeline", title, columns=["milestone", "planned", "posted", "late", "outcome"])
    items = []
    for m in rows:
        posted = m.get("posted_ts")
        late = m.get("late_s") if posted else None
        outcome = m.get("state") or ""
        if m.get("action_state") and m["action_state"] != "none":
            outcome += f", action {m['action_state']}"
        if m.get("resolved_by"):
            outcome += f" by {who(m['resolved_by'])}"
        ramp_to = m.get("ramp_to")
        ramped = None
        if ramp_to is not None and m.get("due_ts"):
            ramped = next((t for t, p in ctx.steps if p == ramp_to and t >= float(m["due_ts"]) - 3600), None)
            if ramped is not None:
                outcome += f"; at {ramp_to}% {duration(ramped - float(m['due_ts']))} after plan"
        label = f"{m.get('label') or ''} {m.get('name') or ''}".strip()
        out.rows.append([label, when(m.get("due_ts")), when(posted), duration(late), outcome])
        items.append({"label": m.get("label"), "name": m.get("name"), "planned": m.get("due_at"),
                      "posted": _iso(posted) if posted else None, "late_s": late, "state": m.get("state"),
                      "action_state": m.get("action_state"), "ramp_to": ramp_to,
                      "ramped_at": _iso(ramped) if ramped else None})
    posted_late = [i["late_s"] for i in items if i["late_s"] is not None]
    out.figures = {"milestones": items, "posted": len(posted_late),
                   "max_late_s": max(posted_late) if posted_late else None}
    out.notes.append(f"{len(posted_late)} of {len(items)} milestones posted"
                     + (f", at most {duration(max(posted_late))} late." if posted_late else "."))
    return out


def traffic_section(ctx: ReviewContext) -> ReviewSection:
    title = "Traffic changes"
    rows = ctx.reader.traffic_changes(ctx.launch_id)
    if rows is None:
        return ReviewSection.missing("traffic", title, "this bot has no traffic control installed.")
    if not rows:
        return ReviewSection.missing("traffic", title, "no traffic change was made during this launch.")
    out = ReviewSection("traffic", title, columns=["when", "change", "status", "who", "why", "verification"])
    items = []
    for c in rows:
        at = c.get("finished_ts") or _ts(c.get("started_at"))
        to_pct = c.get("to_pct")
        change = (f"rollback {_p(c.get('from_pct'))} → 0%" if c["kind"] == "rollback"
                  else f"ramp {_p(c.get('from_pct'))} → {_p(to_pct)}")
        people = who(c.get("requested_by"))
        if c.get("confirmed_by") and c["confirmed_by"] != c.get("requested_by"):
            people += f", confirmed by {who(c['confirmed_by'])}"
        reason = (c.get("reason") or "–") + (" (health gate forced)" if c.get("forced") else "")
        v = c.get("verification") or {}
        total_ms = (c.get("durations") or {}).get("total_ms")
        figures = (f"{v['served']:,}/{v['sample']:,} served ({v['fraction']:.1%}, target {v['target']:.0%})"
                   if v.get("sample") else (c.get("error") or "–"))
        if total_ms is not None:
            figures += f", {total_ms:.0f} ms"
        out.rows.append([when(at), change, c["status"], people, reason, figures])
        items.append({"at": _iso(at) if at else None, "kind": c["kind"], "from_pct": c.get("from_pct"),
                      "to_pct": 0.0 if c["kind"] == "rollback" else to_pct, "status": c["status"],
                      "requested_by": c.get("requested_by"), "confirmed_by": c.get("confirmed_by"),
                      "reason": c.get("reason"), "forced": bool(c.get("forced")), "verification": v or None,
                      "total_ms": total_ms, "ld_version_after": c.get("ld_version_after"), "error": c.get("error")})
    verified = [i for i in items if i["status"] == "verified"]
    out.figures = {"changes": items, "verified": len(verified), "attempts": len(items),
                   "rollbacks": sum(1 for i in verified if i["kind"] == "rollback"),
                   "final_pct": ctx.steps[-1][1] if ctx.steps else None}
    out.notes.append(f"{len(verified)} verified change(s) of {len(items)} attempt(s); "
                     f"{out.figures['rollbacks']} rollback(s); traffic now at "
                     f"{_p(out.figures['final_pct']) if out.figures['final_pct'] is not None else 'unknown'}.")
    return out


def alerts_section(ctx: ReviewContext) -> ReviewSection:
    title = "Alerts"
    rows = ctx.reader.alerts(ctx.launch_id, ctx.start, ctx.end)
    if rows is None:
        return ReviewSection.missing("alerts", title, "this bot has no alerting installed.")
    if not rows:
        out = ReviewSection("alerts", title, figures={"alerts": [], "count": 0})
        out.notes.append("No alert fired during the launch.")
        return out
    out = ReviewSection("alerts", title, columns=["opened", "alert", "value", "acknowledged", "resolved", "escalation"])
    items = []
    for a in rows:
        opened = float(a["opened_at"])
        tta = a["acknowledged_at"] - opened if a.get("acknowledged_at") else None
        ttr = a["resolved_at"] - opened if a.get("resolved_at") else None
        tiers = sorted({int(e["tier"]) + 1 for e in a.get("escalations") or []})  # stored 0-based
        peak = _peak(a)
        value = (f"peak {pct(peak)} (threshold {pct(a.get('threshold'))})"
                 if a.get("unit") == "ratio" and peak is not None else
                 (f"peak {peak:g}" if peak is not None else "–"))
        ack = (f"{duration(tta)} by {who(a.get('acknowledged_by'))}" if tta is not None else "never")
        res = (f"{duration(ttr)}" + (f" by {who(a['resolved_by'])}" if a.get("resolved_by") else "")
               if ttr is not None else "open")
        esc = ", ".join(f"tier {t}" for t in tiers) if tiers else "none"
        out.rows.append([when(opened), f"{a['title']} ({a.get('severity', '')})", value, ack, res, esc])
        items.append({"id": a["id"], "metric": a["metric"], "title": a["title"], "severity": a.get("severity"),
                      "opened": _iso(opened), "peak": peak, "threshold": a.get("threshold"),
                      "acknowledged_by": a.get("acknowledged_by"), "time_to_acknowledge_s": tta,
                      "resolved_by": a.get("resolved_by"), "time_to_resolve_s": ttr, "status": a["status"],
                      "escalation_tiers": tiers})
        ctx.chart.alerts.append({"at": opened, "title": a["title"], "severity": a.get("severity")})
    ttas = [i["time_to_acknowledge_s"] for i in items if i["time_to_acknowledge_s"] is not None]
    ttrs = [i["time_to_resolve_s"] for i in items if i["time_to_resolve_s"] is not None]
    out.figures = {"alerts": items, "count": len(items),
                   "mean_time_to_acknowledge_s": sum(ttas) / len(ttas) if ttas else None,
                   "mean_time_to_resolve_s": sum(ttrs) / len(ttrs) if ttrs else None}
    out.notes.append(f"{len(items)} alert(s); mean time to acknowledge "
                     f"{duration(out.figures['mean_time_to_acknowledge_s'])}, to resolve "
                     f"{duration(out.figures['mean_time_to_resolve_s'])}.")
    return out


def _peak(alert: dict[str, Any]) -> float | None:
    """The worst value the alert saw (its recorded trend and its latest value)."""
    values: list[float] = []
    try:
        values = [float(v) for v in json.loads(alert.get("trend") or "[]") if isinstance(v, int | float)]
    except (ValueError, TypeError):
        values = []
    if isinstance(alert.get("value"), int | float):
        values.append(float(alert["value"]))
    return max(values) if values else None


def readiness_section(ctx: ReviewContext) -> ReviewSection:
    title = "Readiness checks and sign-offs"
    runs = ctx.reader.check_runs(ctx.launch_id, since=ctx.start)
    if runs is None:
        return ReviewSection.missing("readiness", title, "this bot has no readiness checks installed.")
    out = ReviewSection("readiness", title, columns=["run", "when", "environment", "verdict", "counts", "failed"])
    items = []
    latest: dict[str, str] = {}  # check id -> its status in the latest run that ran it
    failed_once: set[str] = set()
    for r in runs:
        results = ctx.reader.check_results(r["id"])
        failures = [x["check_id"] for x in results if x["status"] in ("fail", "error")]
        failed_once.update(failures)
        latest.update({x["check_id"]: x["status"] for x in results})
        counts = r.get("counts") or {}
        out.rows.append([f"#{r['id']}", when(r.get("finished_at") or r.get("started_at")), r.get("environment") or "",
                         r.get("verdict") or "", ", ".join(f"{n} {k}" for k, n in counts.items() if n),
                         ", ".join(f"`{f}`" for f in failures) or "–"])
        items.append({"run_id": r["id"], "at": _iso(r.get("finished_at") or r["started_at"]),
                      "environment": r.get("environment"), "verdict": r.get("verdict"), "counts": counts,
                      "by": r.get("actor"), "source": r.get("source"), "failed": failures})
    signoffs = ctx.reader.signoffs(ctx.launch_id) or []
    confirmed = [s for s in signoffs if s["state"] == "confirmed"]
    for s in signoffs:
        out.notes.append(f"Sign-off `{s['item_id']}`: {s['state']} by {who(s['by_user'])} {when(s['at'])}")
    fixed = sorted(c for c in failed_once if latest.get(c) in ("pass", "warn"))
    still = sorted(c for c in failed_once if latest.get(c) in ("fail", "error"))
    out.figures = {"runs": items, "signoffs": signoffs, "signoffs_confirmed": len(confirmed),
                   "final_verdict": items[-1]["verdict"] if items else None, "fixed": fixed, "still_failing": still}
    if not items:
        out.notes.insert(0, f"{NOT_RECORDED}: no readiness run during this launch (`/cio check`).")
    else:
        out.notes.insert(0, f"{len(items)} run(s); last verdict {items[-1]['verdict']}"
                         + (f"; fixed during the launch: {', '.join(f'`{c}`' for c in fixed)}" if fixed else "")
                         + (f"; still failing: {', '.join(f'`{c}`' for c in still)}" if still else "") + ".")
    return out


def delivery_section(ctx: ReviewContext) -> ReviewSection:
    title = "Delivery per traffic step"
    start_min, end_min = int(ctx.start // 60), int(ctx.end // 60)
    rows = ctx.reader.metric_minutes(DELIVERY_METRICS, start_min, end_min)
    if rows is None:
        return ReviewSection.missing("delivery", title, "this bot does not count Customer.io delivery webhooks.")
    per_minute: dict[int, dict[str, int]] = {}
    for r in rows:
        per_minute.setdefault(int(r["minute"]), dict.fromkeys(DELIVERY_METRICS, 0))[r["metric"]] += int(r["count"])
    _rate_series(ctx, per_minute)
    out = ReviewSection("delivery", title, columns=["step", "from", "to", "sent", "delivered", "bounce rate",
                                                    "complaint rate"])
    windows = _step_windows(ctx.steps, ctx.end)
    items = []
    for pct_value, since, until in windows:
        if pct_value <= 0:
            continue
        sums = dict.fromkeys(DELIVERY_METRICS, 0)
        for minute, counts in per_minute.items():
            if since // 60 <= minute < math.ceil(until / 60):
                for k in DELIVERY_METRICS:
                    sums[k] += counts[k]
        bounce = sums["email_bounced"] / sums["email_sent"] if sums["email_sent"] else None
        complaint = sums["email_spammed"] / sums["email_delivered"] if sums["email_delivered"] else None
        out.rows.append([_p(pct_value), when(since), when(until), f"{sums['email_sent']:,}",
                         f"{sums['email_delivered']:,}", f"{pct(bounce)} ({sums['email_bounced']:,})",
                         f"{pct(complaint, 3)} ({sums['email_spammed']:,})"])
        items.append({"percent": pct_value, "from": _iso(since), "to": _iso(until), "sent": sums["email_sent"],
                      "delivered": sums["email_delivered"], "bounced": sums["email_bounced"],
                      "spammed": sums["email_spammed"], "bounce_rate": bounce, "complaint_rate": complaint})
    out.figures = {"steps": items, "bounce_threshold": ctx.chart.bounce_threshold,
                   "complaint_threshold": ctx.chart.complaint_threshold}
    if not per_minute:
        out.notes.append(f"{NOT_RECORDED}: no Customer.io delivery webhook arrived during the launch.")
    elif not items:
        out.notes.append("Webhooks arrived, but traffic never reached Customer.io through a verified step.")
    out.notes.append(f"Thresholds: bounce {pct(ctx.chart.bounce_threshold)} of sent, complaints "
                     f"{pct(ctx.chart.complaint_threshold, 3)} of delivered.")
    return out


def api_section(ctx: ReviewContext) -> ReviewSection:
    title = "Customer.io API health"
    samples = ctx.reader.probe_samples(ctx.start, ctx.end)
    if samples is None:
        return ReviewSection.missing("api", title, "this bot does not probe the Track API.")
    if not samples:
        return ReviewSection.missing("api", title, "no Track API probe ran during the launch.")
    latencies = sorted(float(s["latency_ms"]) for s in samples)
    errors = sum(1 for s in samples if not s["ok"])
    figures = {"probes": len(samples), "errors": errors, "error_rate": errors / len(samples),
               "p50_ms": _quantile(latencies, 0.5), "p99_ms": _quantile(latencies, 0.99),
               "max_ms": latencies[-1]}
    out = ReviewSection("api", title, columns=["probes", "errors", "error rate", "p50", "p99", "max"],
                        figures=figures)
    out.rows.append([str(len(samples)), str(errors), pct(figures["error_rate"]), f"{figures['p50_ms']:.0f} ms",
                     f"{figures['p99_ms']:.0f} ms", f"{figures['max_ms']:.0f} ms"])
    return out


def _quantile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))
    return values[index]


def _p(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}%"


def _step_windows(steps: list[tuple[float, float]], end: float) -> list[tuple[float, float, float]]:
    out = []
    for i, (t, p) in enumerate(steps):
        until = steps[i + 1][0] if i + 1 < len(steps) else end
        if until > t:
            out.append((p, t, until))
    return out


def _rate_series(ctx: ReviewContext, per_minute: dict[int, dict[str, int]]) -> None:
    """Bounce and complaint rates in buckets (about 240 over the launch, so a spike is not
    averaged away), for the chart."""
    if not per_minute:
        return
    span = max(1, int((ctx.end - ctx.start) // 60))
    bucket = max(1, span // 240)
    buckets: dict[int, dict[str, int]] = {}
    for minute, counts in per_minute.items():
        b = buckets.setdefault(minute - (minute - int(ctx.start // 60)) % bucket, dict.fromkeys(DELIVERY_METRICS, 0))
        for k in DELIVERY_METRICS:
            b[k] += counts[k]
    for minute in sorted(buckets):
        c = buckets[minute]
        t = minute * 60 + bucket * 30
        if c["email_sent"]:
            ctx.chart.bounce.append((t, c["email_bounced"] / c["email_sent"]))
        if c["email_delivered"]:
            ctx.chart.complaint.append((t, c["email_spammed"] / c["email_delivered"]))


# -- the service -----------------------------------------------------------------------------------------
class ReviewService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.readers: list[tuple[str, Reader]] = []

    def register(self, key: str, reader: Reader) -> None:
        self.readers.append((key, reader))

    def build(self, channel_id: str | None = None, *, launch_id: int | None = None) -> Report:
        return build_report(self.services.store, self.services.settings, self.readers,
                            now=self.services.clock.timestamp(), channel_id=channel_id, launch_id=launch_id)

    async def post(self, channel_id: str, *, thread_ts: str | None = None, launch_id: int | None = None) -> Report:
        """Post the report and upload its chart to the channel."""
        from bot.review_chart import render_chart

        report = self.build(channel_id, launch_id=launch_id)
        text, out = render_blocks(report)
        await self.services.slack.post_message(channel_id, text, out, thread_ts=thread_ts)
        png = await _to_thread(render_chart, report.chart)
        try:
            await self.services.slack.upload_file(
                channel_id, f"launch-{report.launch_id}-review.png", png,
                title=f"Launch review: traffic, bounce and complaint rates (launch #{report.launch_id})",
                comment="Traffic over time with bounce and complaint rates against their thresholds; alerts marked.",
                thread_ts=thread_ts,
            )
        except ProviderError as exc:
            log.warning("the review chart was not uploaded: %s", exc)
            note = (f":warning: The chart could not be uploaded ({exc.message}); the same chart is written by "
                    "`cio-bot review --chart review.png`.")
            await self.services.slack.post_message(channel_id, note, [blocks.section(note)], thread_ts=thread_ts)
        return report

    async def on_timeline_action(self, payload: dict[str, Any]) -> None:
        """``timeline.action`` with ``action == "review"`` (the T+24h milestone): post the review."""
        if payload.get("action") != "review":
            return
        channel = payload.get("channel_id") or self.services.settings.launch_channel
        if not channel:
            log.warning("the T+24h review has no channel to post to")
            return
        await self.post(channel, thread_ts=payload.get("thread_ts"), launch_id=payload.get("launch_id"))


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


DEFAULT_READERS: list[tuple[str, Reader]] = [
    ("timeline", timeline_section),
    ("traffic", traffic_section),
    ("alerts", alerts_section),
    ("readiness", readiness_section),
    ("delivery", delivery_section),
    ("api", api_section),
]


def build_report(store: Store, settings: Settings, readers: list[tuple[str, Reader]], *, now: float,
                 channel_id: str | None = None, launch_id: int | None = None) -> Report:
    """The report of one launch (by id, else the channel's latest, else the database's latest)."""
    reader = ReviewReader(store)
    launch = reader.launch(launch_id) if launch_id else reader.latest_launch(channel_id)
    if launch is None:
        raise UserError("There is no launch to review yet: a launch starts with `/cio golive` or the first "
                        "`/cio ramp`.")
    launch_id = int(launch["id"])
    changes = reader.traffic_changes(launch_id) or []
    start = _launch_start(reader, launch, changes) or now
    end = max(now, start + 60)
    chart = ChartSeries(start=start, end=end)
    thresholds = _thresholds(settings)
    chart.bounce_threshold, chart.complaint_threshold = thresholds
    steps = [(start, 0.0)]
    for c in changes:
        if c["status"] != "verified":
            continue
        t = c.get("finished_ts") or _ts(c.get("finished_at"))
        if t is None:
            continue
        steps.append((float(t), 0.0 if c["kind"] == "rollback" else float(c.get("to_pct") or 0.0)))
    chart.traffic = steps
    ctx = ReviewContext(launch, start, end, reader, settings, chart, steps)
    sections = []
    for key, fn in readers:
        try:
            sections.append(fn(ctx))
        except Exception as exc:  # one section failing never hides the others
            log.exception("review section %s failed", key)
            sections.append(ReviewSection.missing(key, key.capitalize(), f"could not be read ({type(exc).__name__})"))
    return Report(int(launch["id"]), str(launch.get("channel_id") or ""), now, start, end,
                  str(launch.get("status") or ""), sections, chart)


def _launch_start(reader: ReviewReader, launch: dict[str, Any], changes: list[dict[str, Any]]) -> float | None:
    """The earliest thing the domains recorded about the launch (plan made, first readiness run,
    first traffic change); the launch row's creation time when they recorded nothing."""
    launch_id = int(launch["id"])
    found: list[float] = []
    plan = reader.plan(launch_id)
    if plan and (t := _ts(plan.get("created_at"))) is not None:
        found.append(t)
    if (t := reader.first_check_of(launch_id)) is not None:
        found.append(float(t))
    found += [t for c in changes if (t := _ts(c.get("started_at"))) is not None]
    return min(found) if found else _ts(launch.get("created_at"))


def _thresholds(settings: Settings) -> tuple[float, float]:
    """Bounce and complaint thresholds from ``[alerts.thresholds]`` (the defaults otherwise)."""
    from bot.readiness import thresholds_from

    t = thresholds_from(settings)
    return t.bounce_rate, t.complaint_rate


# -- rendering --------------------------------------------------------------------------------------------
def render_blocks(report: Report) -> tuple[str, list[Block]]:
    """The report as one Slack message within Block Kit limits."""
    title = f"Launch review: launch #{report.launch_id}"
    text = f"{title} ({when(report.start)} to {when(report.end)})"
    out: list[Block] = [
        blocks.header(title),
        blocks.context(f"From {when(report.start)} to {when(report.end)} · status {report.status} · "
                       "assembled from what the bot recorded"),
    ]
    for s in report.sections:
        lines = [f"*{s.title}*"]
        if s.recorded and s.rows:
            lines.extend("• " + " · ".join(c for c in row if c and c != "–") for row in s.rows[:20])
            if len(s.rows) > 20:
                lines.append(f"_… {len(s.rows) - 20} more in `cio-bot review`_")
        lines.extend(f"_{n}_" if n.startswith(NOT_RECORDED) else n for n in s.notes)
        out.append(blocks.section("\n".join(lines)))
    out.append(blocks.context("Chart below · full export: `cio-bot review --format markdown`"))
    return text, blocks.fit(out)


def render_markdown(report: Report) -> str:
    lines = [f"# Launch review: launch #{report.launch_id}", "",
             f"From {_iso(report.start)} to {_iso(report.end)} · status {report.status} · "
             f"generated {_iso(report.generated_at)}", ""]
    for s in report.sections:
        lines += [f"## {s.title}", ""]
        if s.recorded and s.rows:
            lines.append("| " + " | ".join(s.columns) + " |")
            lines.append("|" + "---|" * len(s.columns))
            for row in s.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            lines.append("")
        for note in s.notes:
            lines.append(("_" + mrkdwn(note) + "_") if note.startswith(NOT_RECORDED) else mrkdwn(note))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(cell: str) -> str:
    return mrkdwn(cell).replace("|", "\\|").replace("\n", " ")


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, default=str)


def configure(services: Services) -> None:
    service = ReviewService(services)
    for key, reader in DEFAULT_READERS:
        service.register(key, reader)
    services.review = service
    services.events.subscribe("timeline.action", service.on_timeline_action)

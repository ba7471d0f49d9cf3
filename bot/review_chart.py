"""The review's chart: traffic percentage over time (a step line) with bounce and complaint
rates and their thresholds on a second axis, alerts marked. matplotlib's Agg backend,
headless; 1200x675 px at 120 dpi with large type, readable at Slack's preview size."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bot.review import ChartSeries  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 120


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def render_chart(series: ChartSeries) -> bytes:
    """A PNG of exactly WIDTH_PX x HEIGHT_PX."""
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.09, right=0.88, top=0.86, bottom=0.14)
    end = _dt(series.end)
    traffic = series.traffic or [(series.start, 0.0)]
    xs = [_dt(t) for t, _ in traffic] + [end]
    ys = [p for _, p in traffic] + [traffic[-1][1]]
    ax.step(xs, ys, where="post", color="#1f6feb", linewidth=3, label="traffic to Customer.io (%)")
    ax.fill_between(xs, ys, step="post", color="#1f6feb", alpha=0.12)
    ax.set_ylim(0, 105)
    ax.set_ylabel("traffic (%)", fontsize=15, color="#1f6feb")
    ax.tick_params(labelsize=13)

    rates = ax.twinx()
    top = max([series.bounce_threshold * 1.6]
              + [r * 1.15 for _, r in series.bounce] + [r * 1.15 for _, r in series.complaint])
    if series.bounce:
        rates.plot([_dt(t) for t, _ in series.bounce], [r * 100 for _, r in series.bounce], color="#d1242f",
                   linewidth=2.2, marker="o", markersize=4, label="bounce rate")
    if series.complaint:
        rates.plot([_dt(t) for t, _ in series.complaint], [r * 100 for _, r in series.complaint],
                   color="#8250df", linewidth=2.2, marker="s", markersize=4, label="complaint rate")
    rates.axhline(series.bounce_threshold * 100, color="#d1242f", linestyle="--", linewidth=1.6,
                  label=f"bounce threshold {series.bounce_threshold:.1%}")
    rates.axhline(series.complaint_threshold * 100, color="#8250df", linestyle=":", linewidth=1.8,
                  label=f"complaint threshold {series.complaint_threshold:.2%}")
    rates.set_ylim(0, top * 100)
    rates.set_ylabel("rate (%)", fontsize=15)
    rates.tick_params(labelsize=13)

    for n, alert in enumerate(series.alerts, start=1):
        at = _dt(alert["at"])
        ax.axvline(at, color="#bf8700", linewidth=2, alpha=0.9)
        ax.annotate(f"⚠ {n}", xy=(at, 100), xytext=(4, -2), textcoords="offset points", fontsize=13,
                    color="#9a6700", fontweight="bold", va="top")

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(_dt(series.start), end)
    ax.grid(True, alpha=0.3)
    title = "Launch review: traffic, bounce and complaint rates"
    if series.alerts:
        title += f" ({len(series.alerts)} alert{'s' if len(series.alerts) != 1 else ''} marked ⚠)"
    fig.suptitle(title, fontsize=17, fontweight="bold")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = rates.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, loc="upper left", fontsize=11, framealpha=0.9)
    ax.set_xlabel("time (UTC)", fontsize=14)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()

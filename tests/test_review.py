"""The post-launch review: figures against a launch whose events are known (played through the
bot's own commands, buttons and scheduler on the sandbox), the chart, the exports, /cio review."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from bot.rehearsal import EVENT_CATALOG, OPERATOR_2, config_text
from bot.review import ChartSeries, ReviewSection, render_blocks, render_markdown
from bot.review_chart import HEIGHT_PX, WIDTH_PX, render_chart
from bot.sandbox.harness import BotHarness
from bot.sandbox.world import SANDBOX_OPERATOR
from tests.traffic_helpers import proposal

PNG = b"\x89PNG\r\n\x1a\n"
PLANNED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the FakeClock's start: the plan is made then
T0 = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def cli_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment running this checkout's code."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=str(cwd))


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


async def start(start_bot, clock, tmp_path, sandbox) -> BotHarness:
    cfg = tmp_path / "cio.toml"
    cfg.write_text(config_text(sandbox.web.url).replace("min_soak_minutes = 30", "min_soak_minutes = 0"))
    (tmp_path / "events.json").write_text(json.dumps(EVENT_CATALOG))
    env = {"CIO_CONFIG": str(cfg), "CIO_OPERATORS": f"{SANDBOX_OPERATOR},{OPERATOR_2}", "CIO_TIMEZONE": "UTC"}
    return await start_bot(env=env, clock=clock, db_name="launch.db")


async def at(bot: BotHarness, clock, when: datetime) -> None:
    clock.set(when)
    await bot.services.timeline.tick()
    await bot.services.idle()


async def confirm(bot: BotHarness, asked) -> None:
    await bot.click(proposal(asked), "traffic_confirm", user=OPERATOR_2)


async def play_known_launch(bot: BotHarness, clock) -> None:
    """Plan at 12:00 on the 1st for T-0 15:00 on the 2nd; readiness fails then passes; T-0 is
    posted 90 s late and ramped 30 s later by its button; T+1h on time, 50% five minutes
    later by command; a rollback ten minutes after that."""
    await bot.command("/cio golive 2026-12-02 15:00 UTC")
    bot.sandbox.web.pages["/runbook"] = 404
    await bot.command("/cio check documentation")
    bot.sandbox.web.pages["/runbook"] = 200
    await bot.command("/cio check documentation")
    for offset in (-24, -12, -1):
        await at(bot, clock, T0 + timedelta(hours=offset))
    await at(bot, clock, T0 + timedelta(seconds=90))
    clock.set(T0 + timedelta(seconds=120))
    post = next(m for m in reversed(bot.slack.messages) if m.text.startswith("T-0 ·"))
    await confirm(bot, await bot.click(post, "traffic_ramp_request"))
    await at(bot, clock, T0 + timedelta(hours=1))
    clock.set(T0 + timedelta(hours=1, minutes=5))
    await confirm(bot, await bot.command("/cio ramp 50"))
    clock.set(T0 + timedelta(hours=1, minutes=15))
    await confirm(bot, await bot.command("/cio rollback metrics looked wrong"))
    clock.set(T0 + timedelta(hours=1, minutes=20))


def report_of(bot: BotHarness):
    assert bot.services.review is not None
    return bot.services.review.build(bot.channel)


async def test_review_figures_match_the_launch_that_was_played(start_bot, clock, tmp_path, sandbox):
    bot = await start(start_bot, clock, tmp_path, sandbox)
    await play_known_launch(bot, clock)
    report = report_of(bot)

    assert report.start == PLANNED.timestamp(), "the review starts when the launch was planned"
    assert report.end == (T0 + timedelta(hours=1, minutes=20)).timestamp()

    traffic = report.section("traffic").figures
    assert (traffic["attempts"], traffic["verified"], traffic["rollbacks"], traffic["final_pct"]) == (3, 3, 1, 0.0)
    first, second, back = traffic["changes"]
    assert (first["kind"], first["from_pct"], first["to_pct"], first["at"]) == (
        "ramp", 0.0, 10.0, iso(T0 + timedelta(seconds=120)))
    assert (first["requested_by"], first["confirmed_by"]) == (SANDBOX_OPERATOR, OPERATOR_2)
    assert first["verification"]["sample"] == 5000 and abs(first["verification"]["fraction"] - 0.10) < 0.02
    assert (second["from_pct"], second["to_pct"], second["at"]) == (10.0, 50.0, iso(T0 + timedelta(hours=1, minutes=5)))
    assert (back["kind"], back["to_pct"], back["reason"]) == ("rollback", 0.0, "metrics looked wrong")
    assert back["verification"]["served"] == 0

    timeline = {m["label"]: m for m in report.section("timeline").figures["milestones"]}
    assert list(timeline) == ["T-24h", "T-12h", "T-1h", "T-0", "T+1h", "T+2h", "T+24h"]
    assert timeline["T-24h"]["late_s"] == 0 and timeline["T-24h"]["action_state"] == "done"
    assert timeline["T-0"]["late_s"] == 90 and timeline["T-0"]["posted"] == iso(T0 + timedelta(seconds=90))
    assert timeline["T-0"]["ramped_at"] == iso(T0 + timedelta(seconds=120))
    assert timeline["T+1h"]["ramped_at"] == iso(T0 + timedelta(hours=1, minutes=5))
    assert timeline["T+2h"]["posted"] is None and timeline["T+2h"]["state"] == "pending"
    assert report.section("timeline").figures["max_late_s"] == 90

    readiness = report.section("readiness").figures
    verdicts = [(r["environment"], r["verdict"], r["source"]) for r in readiness["runs"]]
    assert verdicts[:2] == [("production", "no-go", "slack"), ("production", "go", "slack")]
    assert ("staging", "go", "timeline") in verdicts, "T-24h validated staging"
    assert readiness["runs"][0]["failed"] == ["documentation.runbook"]
    assert readiness["fixed"] == ["documentation.runbook"]
    # nobody signed the manual items off, so the T-12h smoke test still reports them
    assert readiness["still_failing"] == ["testing.signoff.load_test", "testing.signoff.staging_e2e"]

    assert report.chart.traffic == [
        (PLANNED.timestamp(), 0.0), ((T0 + timedelta(seconds=120)).timestamp(), 10.0),
        ((T0 + timedelta(hours=1, minutes=5)).timestamp(), 50.0),
        ((T0 + timedelta(hours=1, minutes=15)).timestamp(), 0.0)]
    assert (report.chart.bounce_threshold, report.chart.complaint_threshold) == (0.05, 0.001)

    if not bot.store.review.has_table("alerts"):  # domains not in this build say so, they do not crash
        for key in ("alerts", "delivery", "api"):
            assert not report.section(key).recorded
            assert report.section(key).notes[0].startswith("not recorded")

    # the Slack rendering of the same report stays within Block Kit's limits
    text, out = render_blocks(report)
    dicts = [b.to_dict() for b in out]
    assert len(dicts) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in dicts)
    assert "Launch review" in text
    assert "metrics looked wrong" in json.dumps(dicts, ensure_ascii=False)

    # the markdown and JSON exports, by the CLI in another process, from the database alone
    md_path = tmp_path / "review.md"
    env = {**cli_env(tmp_path), "CIO_DB_PATH": str(tmp_path / "launch.db"), "CIO_CONFIG": str(tmp_path / "cio.toml")}
    proc = await asyncio.to_thread(cli, ["review", "--format", "markdown", "--output", str(md_path), "--chart",
                                         str(tmp_path / "chart.png")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = md_path.read_text()
    assert md.startswith("# Launch review: launch #1\n")
    for heading in ("## Timeline: planned vs actual", "## Traffic changes", "## Alerts",
                    "## Readiness checks and sign-offs", "## Delivery per traffic step", "## Customer.io API health"):
        assert heading in md
    assert "| milestone | planned | posted | late | outcome |" in md
    assert "| T-0 Go live with 10% of traffic | 2026-12-02 15:00 UTC | 2026-12-02 15:01 UTC | 1 min 30 s |" in md
    assert "| 2026-12-02 16:15 UTC | rollback 50% → 0% | verified | @U0OPERATOR, confirmed by @U0OPERAT2 | " \
           "metrics looked wrong |" in md
    assert "<@" not in md and "<!date" not in md, "Slack markup is rendered for documents"
    assert "fixed during the launch: `documentation.runbook`" in md
    assert (tmp_path / "chart.png").read_bytes()[:8] == PNG

    proc = await asyncio.to_thread(cli, ["review", "--format", "json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["sections"]["traffic"]["figures"]["verified"] == 3
    assert data["sections"]["timeline"]["figures"]["max_late_s"] == 90
    assert data["window"]["start"] == iso(PLANNED)  # and it ends now, when the CLI ran


def test_review_cli_says_what_to_fix_without_a_database_or_a_launch(tmp_path):
    env = {**cli_env(tmp_path), "CIO_DB_PATH": str(tmp_path / "missing.db")}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "review"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "There is no database at" in proc.stderr and "CIO_DB_PATH" in proc.stderr
    from bot.store import Store

    Store(tmp_path / "empty.db").close()
    env["CIO_DB_PATH"] = str(tmp_path / "empty.db")
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "review"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))
    assert proc.returncode == 1
    assert "There is no launch to review yet" in proc.stderr


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def test_chart_is_a_png_of_slack_preview_size_with_every_series():
    t = datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp()
    series = ChartSeries(
        traffic=[(t - 3600, 0.0), (t, 10.0), (t + 3600, 50.0), (t + 5000, 0.0), (t + 9000, 100.0)],
        bounce=[(t + 600 * i, 0.01 + (0.1 if i == 8 else 0.0)) for i in range(30)],
        complaint=[(t + 600 * i, 0.0004) for i in range(30)],
        alerts=[{"at": t + 4800, "title": "Bounce rate", "severity": "critical"}],
        start=t - 3600, end=t + 86400)
    data = render_chart(series)
    assert data[:8] == PNG
    assert _png_size(data) == (WIDTH_PX, HEIGHT_PX) == (1200, 675)
    empty = render_chart(ChartSeries(start=t, end=t + 60))  # nothing recorded yet still draws
    assert empty[:8] == PNG and _png_size(empty) == (1200, 675)


async def test_slash_review_posts_the_report_and_uploads_the_chart(start_bot, clock, tmp_path, sandbox):
    bot = await start(start_bot, clock, tmp_path, sandbox)
    nothing = await bot.command("/cio review", user="U0VIEWER")
    assert "There is no launch to review yet" in nothing.text
    assert not bot.slack.uploads
    clock.set(T0)
    await confirm(bot, await bot.command("/cio ramp 10"))
    wrong = await bot.command("/cio review everything")
    assert "takes no arguments" in wrong.text
    answer = await bot.command("/cio review", user="U0VIEWER")  # anyone may ask for it
    assert "Posted the review of launch #1" in answer.text
    review = next(m for m in bot.slack.channel_messages(bot.channel) if m.text.startswith("Launch review"))
    assert "ramp 0% → 10%" in json.dumps(review.blocks, ensure_ascii=False)
    files = [m for m in bot.slack.channel_messages(bot.channel) if m.files]
    assert files and files[-1].files[0]["name"] == "launch-1-review.png"
    upload = bot.slack.uploads[files[-1].files[0]["id"]]
    assert upload["data"][:8] == PNG and _png_size(upload["data"]) == (1200, 675)
    assert upload["length"] == len(upload["data"]), "files_upload_v2 announced the size it sent"


async def test_a_failing_section_reader_is_reported_and_the_rest_still_shows(start_bot, clock, tmp_path, sandbox):
    bot = await start(start_bot, clock, tmp_path, sandbox)
    clock.set(T0)
    await confirm(bot, await bot.command("/cio ramp 10"))

    def broken(ctx) -> ReviewSection:
        raise RuntimeError("boom")

    assert bot.services.review is not None
    bot.services.review.register("broken", broken)
    report = report_of(bot)
    assert report.section("broken").notes == ["not recorded: could not be read (RuntimeError)"]
    assert report.section("traffic").figures["verified"] == 1
    assert "could not be read" in render_markdown(report)


async def test_the_t24h_milestone_posts_the_review_in_its_thread(start_bot, clock, tmp_path, sandbox):
    bot = await start(start_bot, clock, tmp_path, sandbox)
    await bot.command("/cio golive 2026-12-02 15:00 UTC")
    clock.set(T0)
    await confirm(bot, await bot.command("/cio ramp 10"))
    for offset in (-24, -12, -1, 0, 1, 2):
        await at(bot, clock, T0 + timedelta(hours=offset))
    assert not any(m.text.startswith("Launch review") for m in bot.slack.messages)
    await at(bot, clock, T0 + timedelta(hours=24))
    post = next(m for m in bot.slack.messages if m.text.startswith("T+24h ·"))
    review = next(m for m in bot.slack.messages if m.text.startswith("Launch review"))
    assert review.thread_ts == post.ts
    chart = next(m for m in bot.slack.messages if m.files)
    assert chart.thread_ts == post.ts
    milestone = next(m for m in bot.store.timeline.milestones(1) if m["label"] == "T+24h")
    assert milestone["action"] == "review" and milestone["action_state"] == "done"


async def test_a_failed_chart_upload_still_leaves_the_report_and_says_so(start_bot, clock, tmp_path, sandbox):
    bot = await start(start_bot, clock, tmp_path, sandbox)
    clock.set(T0)
    await confirm(bot, await bot.command("/cio ramp 10"))
    sandbox.slack.fail("/upload/", status=500, times=None)
    answer = await bot.command("/cio review")
    assert "Posted the review of launch #1" in answer.text
    texts = [m.text for m in bot.slack.channel_messages(bot.channel)]
    assert any(t.startswith("Launch review") for t in texts)
    note = next(t for t in texts if "The chart could not be uploaded" in t)
    assert "cio-bot review --chart" in note
    assert not any(m.files for m in bot.slack.channel_messages(bot.channel))

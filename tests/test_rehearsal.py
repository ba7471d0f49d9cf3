"""``cio-bot rehearse``: a whole launch on the sandbox passes end to end, and a step that does
not behave fails the rehearsal, named."""

from __future__ import annotations

import io

from PIL import Image

from bot.rehearsal import STEPS, Rehearsal, Step, rehearse


async def test_the_whole_launch_rehearses_end_to_end(tmp_path):
    out = io.StringIO()
    ok, r = await rehearse(speed=0, out=out, chart_path=tmp_path / "chart.png", workdir=tmp_path)
    transcript = out.getvalue()
    assert ok, transcript[-3000:]
    assert transcript.splitlines()[-1].startswith("Rehearsal PASSED")
    statuses = {x.name: x.status for x in r.results}
    assert len(statuses) == len(STEPS)
    for name, status in statuses.items():
        step = next(s for s in STEPS if s.name == name)
        # a step is skipped only when the bot lacks the domain it needs, and the summary says which
        expected = "passed" if all(getattr(r.h.services, d, None) is not None for d in step.needs) else "skipped"
        assert status == expected, name
    for must in ("The launch is planned", "Readiness checks find a problem", "The problem is fixed and the checks pass",
                 "T-0: 10% of traffic, verified", "Rollback to 0%, verified", "Resume: 50% again, verified",
                 "Full traffic: 100%, verified", "T+24h: the review and its chart"):
        assert statuses[must] == "passed", must
    # what the channel showed, in order
    for line in ("> /cio golive 2026-12-10 15:00 UTC", "NO-GO", "> pressed [Confirm 10%]   (as U0OPERAT2)",
                 '> /cio rollback "bounce spike at 50%"', "== Launch review: launch #1 ==",
                 "[file: launch-1-review.png]"):
        assert line in transcript, line
    assert transcript.index("NO-GO") < transcript.index("> pressed [Confirm 10%]") < transcript.index(
        "rollback 50% → 0%")
    with Image.open(tmp_path / "chart.png") as img:
        assert img.format == "PNG" and img.size == (1200, 675)
    assert (tmp_path / "review.md").read_text().startswith("# Launch review: launch #1")


async def test_a_step_that_does_not_behave_fails_the_rehearsal_and_is_named(tmp_path):
    async def refuse_changes(r: Rehearsal) -> None:
        r.h.sandbox.launchdarkly.fail("/api/v2/flags/", method="PATCH", status=400, times=None)

    steps = [STEPS[0], Step("LaunchDarkly refuses every change", refuse_changes),
             next(s for s in STEPS if s.name.startswith("T-0")), STEPS[-1]]
    out = io.StringIO()
    ok, r = await rehearse(speed=0, out=out, steps=steps, workdir=tmp_path)
    assert not ok
    assert [x.status for x in r.results] == ["passed", "passed", "failed"], "it stops at the failing step"
    failed = r.results[-1]
    assert failed.name == "T-0: 10% of traffic, verified"
    assert failed.detail.startswith("asking for 10% offered no confirmation")
    assert "LaunchDarkly rejects this change in a dry run (HTTP 400)" in failed.detail
    last = out.getvalue().splitlines()
    assert last[-2].startswith("Rehearsal FAILED")
    assert last[-1] == f"Failed step: T-0: 10% of traffic, verified: {failed.detail}"


async def test_the_rehearsed_launch_reviews_to_the_figures_it_played(tmp_path):
    """The rehearsal's events are known (its script), so its review's alert and delivery
    figures are too; read back from the database it leaves in ``workdir``."""
    from datetime import timedelta

    from bot.cli import load_settings
    from bot.rehearsal import T0
    from bot.review import DEFAULT_READERS, build_report
    from bot.store import Store

    ok, r = await rehearse(speed=0, workdir=tmp_path)
    assert ok, "\n".join(r.transcript.lines[-40:])
    if r.h.services.alerts is None:  # a build without alerting has no such figures
        return
    store = Store(tmp_path / "rehearsal.db")
    try:
        report = build_report(store, load_settings({"CIO_CONFIG": str(tmp_path / "cio.toml"),
                                                    "CIO_DB_PATH": str(tmp_path / "rehearsal.db")}),
                              DEFAULT_READERS, now=(T0 + timedelta(hours=24)).timestamp(), channel_id="C0LAUNCH01")
    finally:
        store.close()
    alerts = report.section("alerts").figures
    assert alerts["count"] == 1
    alert = alerts["alerts"][0]
    assert alert["metric"] == "bounce_rate" and alert["opened"] == "2026-12-10T16:21:00Z"
    assert alert["time_to_acknowledge_s"] == 11 * 60 and alert["acknowledged_by"] == "U0OPERATOR"
    assert alert["time_to_resolve_s"] == 29 * 60
    assert alert["escalation_tiers"] == [1, 2] and alert["peak"] == 0.15
    steps = [(s["percent"], s["sent"], s["delivered"], s["bounced"], s["spammed"])
             for s in report.section("delivery").figures["steps"]]
    assert steps == [(10.0, 600, 595, 5, 0), (50.0, 400, 340, 60, 0), (50.0, 1500, 1490, 10, 0),
                     (100.0, 3200, 3184, 16, 1)]
    assert report.section("delivery").figures["steps"][1]["bounce_rate"] == 0.15
    assert report.section("delivery").figures["steps"][3]["complaint_rate"] == 1 / 3184
    api = report.section("api").figures
    assert api["probes"] > 0 and api["error_rate"] == 0.0
    assert report.chart.alerts[0]["at"] == (T0 + timedelta(hours=1, minutes=21)).timestamp()
    assert max(rate for _, rate in report.chart.bounce) == 0.15, "the spike is not averaged away on the chart"

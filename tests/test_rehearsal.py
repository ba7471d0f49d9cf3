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

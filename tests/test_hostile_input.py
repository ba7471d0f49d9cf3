"""Every command and every button, fed hostile input over signed HTTP: each answer is a sentence,
never an internal error, and nothing moves (no traffic change, no launch planned, no channel post)."""

from __future__ import annotations

import pytest

from bot.sandbox.slack import SANDBOX_CHANNEL
from handlers.registry import ACTIONS, commands, load_handlers

load_handlers()

HOSTILE = [
    "'; DROP TABLE audit; --",
    "\u202e05",  # right-to-left override
    "５０",  # full-width digits
    "50\u200b",  # zero-width space
    "1e3",
    "0x32",
    "NaN",
    "-inf",
    "½",
    "<!channel> <@U0VIEWER> <#C0OTHER|x>",
    "*bold* `code` ~strike~ &amp; &lt;",
    "--force",
    '--force ""',
    "-- --",
    "%s%n%x {0} {{}}",
    "x" * 3000,
    "9" * 400,
    "\\",
    "🚀🚀🚀",
]

# Commands whose words are free text: whatever follows `/cio rollback` is its reason, so hostile
# words there must only ever produce the confirmation, never the rollback itself.
FREE_TEXT = {"rollback"}


def _commands() -> list[str]:
    return [c.name for c in commands()]


@pytest.mark.parametrize("name", _commands())
async def test_each_command_refuses_hostile_arguments_with_a_sentence(bot, sandbox, name):
    _serving(sandbox, 10)
    before = sandbox.launchdarkly.env()
    posts_before = len(sandbox.slack.channel_messages(SANDBOX_CHANNEL))
    for junk in HOSTILE:
        answer = await bot.command(f"/cio {name} {junk}")
        assert answer.status == 200, (name, junk)
        text = answer.text
        assert text.strip(), f"/cio {name} {junk[:40]!r} got no answer"
        assert "internal error" not in text and "Traceback" not in text, (name, junk[:40], text)
        # a long or hostile argument is never echoed back whole (a reason is shown: it is the point)
        assert name in FREE_TEXT or "x" * 600 not in answer.all_text() and "9" * 300 not in answer.all_text(), (name, "echoed")
        record = bot.store.audit.recent(1)[0]
        assert record["outcome"] != "error", (name, junk[:40], record)
        if name in FREE_TEXT and len(junk) <= 1000:
            assert any(b["action_id"] == "traffic_confirm" for b in _buttons(bot, answer)), junk[:40]
    assert sandbox.launchdarkly.env() == before, f"/cio {name} moved traffic on hostile input"
    if name not in FREE_TEXT:
        assert bot.store.launches.current(SANDBOX_CHANNEL) is None, f"/cio {name} began a launch"
    assert len(sandbox.slack.channel_messages(SANDBOX_CHANNEL)) == posts_before, f"/cio {name} posted"


def _serving(sandbox, percent: int) -> None:
    sandbox.launchdarkly.set_on(True)
    sandbox.launchdarkly.set_rollout(percent)


def _block_text(answer) -> str:
    return "\n".join(b["text"]["text"] for m in answer.responses for b in m.blocks if b.get("type") == "section")


def _buttons(bot, answer) -> list[dict]:
    return [b for m in answer.responses for b in bot.buttons(m)]


async def test_an_overlong_command_is_refused_before_any_command_sees_it(bot, sandbox):
    before = sandbox.launchdarkly.env()
    answer = await bot.command("/cio rollback " + "because " * 200)
    assert "1,608 characters; a /cio command takes at most 1,000" in answer.text
    assert not _buttons(bot, answer)
    record = bot.store.audit.recent(1)[0]
    assert record["outcome"] == "usage" and len(record["action"]) <= 80
    assert sandbox.launchdarkly.env() == before


async def test_a_long_rollback_reason_is_kept_to_500_characters(bot, sandbox):
    _serving(sandbox, 10)
    answer = await bot.command("/cio rollback " + "b" * 900)
    shown = _block_text(answer)
    assert "b" * 499 + "…" in shown and "b" * 500 not in shown


async def test_a_rollback_reason_is_prose_not_shell_words(bot, sandbox):
    """In an incident nobody should be told to check their quotes."""
    _serving(sandbox, 10)
    answer = await bot.command("/cio rollback it's bouncing, the \"new\" template is broken")
    assert any(b["action_id"] == "traffic_confirm" for b in _buttons(bot, answer))
    assert "it's bouncing, the \"new\" template is broken" in _block_text(answer)


async def test_digits_of_other_scripts_are_not_a_percentage(bot, sandbox):
    for word in ("５０", "٥٠", "50\u200b"):
        answer = await bot.command(f"/cio ramp {word}")
        assert "is not a percentage" in answer.text, word
        assert not _buttons(bot, answer)


@pytest.mark.parametrize("action_id", sorted(ACTIONS))
async def test_each_button_refuses_forged_values(bot, sandbox, action_id):
    """A button value is the clicker's to forge: every action checks it server side."""
    before = sandbox.launchdarkly.env()
    for value in ("", "x", "999999999999", "-1", "'; DROP TABLE audit; --", '{"launch": 1}', "a" * 2000,
                  "1:2:3:4:5", "\u202e1"):
        answer = await bot.press(action_id, value, message_ts="1700000000.000100")
        assert answer.status == 200, (action_id, value[:40])
        text = answer.text
        assert text.strip(), f"{action_id} {value[:40]!r} got no answer"
        assert "internal error" not in text and "Traceback" not in text, (action_id, value[:40], text)
        record = bot.store.audit.recent(1)[0]
        assert record["outcome"] not in ("error", "ok", "done"), (action_id, value[:40], record)
    assert sandbox.launchdarkly.env() == before, f"{action_id} moved traffic on a forged value"

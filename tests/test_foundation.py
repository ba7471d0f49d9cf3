"""The foundation over real HTTP: signed slash commands, refusals, usage, health."""

from __future__ import annotations


async def test_help_is_answered_within_the_ack(bot):
    answer = await bot.command("/cio help", settle=False)
    assert answer.status == 200
    assert answer.ack is not None, "help must come back in the HTTP answer itself"
    assert answer.ack["response_type"] == "ephemeral"
    text = answer.all_text()
    for usage in ("/cio help", "/cio status", "/cio audit"):
        assert usage in text
    assert answer.elapsed_ms < 3000
    rows = bot.store.audit.recent()
    assert rows[0]["action"] == "/cio help" and rows[0]["outcome"] == "ok"

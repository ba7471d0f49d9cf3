"""Secrets set in the environment appear nowhere in the logs or output of a run that fails."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp

from bot.sandbox.requests import signed_headers, slash_body
from bot.sandbox.slack import FakeSlack

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-leakcheck-bot-token",
    "SLACK_SIGNING_SECRET": "leakcheck-signing-secret-2222",
    "CUSTOMERIO_TRACK_API_KEY": "leakcheck-track-key-3333",
    "CUSTOMERIO_APP_API_KEY": "leakcheck-app-key-4444",
    "CUSTOMERIO_WEBHOOK_SIGNING_KEY": "leakcheck-webhook-key-5555",
    "LAUNCHDARKLY_API_TOKEN": "api-leakcheck-ld-token-6666",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_failing_run_leaks_no_secret(tmp_path):
    # Slack rejects the token: every call the bot makes fails, on purpose.
    async with FakeSlack(token="xoxb-some-other-token") as slack:
        port = _free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PORT": str(port),
            "SLACK_API_URL": slack.api_url,
            "CIO_DB_PATH": str(tmp_path / "bot.db"),
            "CIO_LAUNCH_CHANNEL": "C0LAUNCH01",
            "CIO_OPERATORS": "U0OPERATOR",
            "CUSTOMERIO_SITE_ID": "site123",
            "CUSTOMERIO_TRACK_URL": "http://127.0.0.1:9",
            "CUSTOMERIO_APP_URL": "http://127.0.0.1:9",
            **SECRETS,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "--log-level", "DEBUG", "serve", "--host", "127.0.0.1",
            env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"serving on" in line, line
            async with aiohttp.ClientSession() as session:
                for text in ("status", "audit", "help"):
                    body = slash_body(text, user_id="U0OPERATOR", channel_id="C0LAUNCH01",
                                      response_url=slack.response_url())
                    headers = signed_headers(SECRETS["SLACK_SIGNING_SECRET"], body)
                    async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                            headers=headers) as r:
                        answer = await r.text()
                        assert all(v not in answer for v in SECRETS.values())
                await asyncio.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        output = line.decode() + out.decode() + err.decode()
        assert proc.returncode == 0, output[-2000:]
        # the run did fail: Slack refused the token and the bot said so in its log
        assert "invalid_auth" in output
        for name, value in SECRETS.items():
            assert value not in output, f"{name} leaked into the output"
        # what went to the fake Slack carries no secret either (bar the token in the auth header)
        for recorded in slack.requests:
            assert all(v not in recorded.body.decode(errors="replace") for v in SECRETS.values())


def test_log_records_are_scrubbed_even_when_a_secret_is_revealed(caplog):
    import logging

    from bot.secrets import RedactingFilter, Secret

    token = Secret("scrub-me-please-7777")
    logger = logging.getLogger("leak-test")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        logger.warning("calling with %s and %s", token, token.reveal())
        try:
            raise RuntimeError(f"upstream said: bad key {token.reveal()}")
        except RuntimeError:
            logger.exception("provider failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "scrub-me-please" not in caplog.text
    assert "***" in caplog.text


async def test_provider_errors_do_not_carry_keys(sandbox):
    from bot.config import Settings
    from bot.providers.customerio import customerio_for

    settings = Settings.from_env(sandbox.overlay({"CUSTOMERIO_SITE_ID": "wrong-site",
                                                  "CUSTOMERIO_TRACK_API_KEY": "wrong-key-8888-secret",
                                                  "CUSTOMERIO_APP_API_KEY": "wrong-app-9999-secret",
                                                  "CUSTOMERIO_TRACK_URL": sandbox.customerio.url,
                                                  "CUSTOMERIO_APP_URL": sandbox.customerio.url}))
    cio = customerio_for(settings)
    try:
        for call in (cio.track.region(), cio.app.sender_identities()):
            try:
                await call
            except Exception as exc:
                text = str(exc) + repr(exc)
                assert "HTTP 401" in text
                assert "8888-secret" not in text and "9999-secret" not in text
            else:
                raise AssertionError("wrong credentials were accepted")
    finally:
        await cio.aclose()

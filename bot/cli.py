"""``cio-bot``: serve, console, sandbox, run (and, as they land: check, rehearse, review)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.config import ConfigError, Settings
from bot.secrets import install_log_redaction

log = logging.getLogger("cio-bot")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    install_log_redaction()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(os.environ if env is None else env)


# -- serve --------------------------------------------------------------------------------
async def serve(args: argparse.Namespace) -> int:
    from bot.app import Runtime
    from bot.sandbox.world import Sandbox

    env: Mapping[str, str] = os.environ
    sandbox: Sandbox | None = None
    if not env.get("SLACK_BOT_TOKEN"):
        sandbox = await Sandbox().start()
        env = sandbox.overlay(env)
        log.warning("SLACK_BOT_TOKEN is not set: serving against the built-in sandbox Slack at %s",
                    sandbox.slack.url)
    settings = load_settings(env)
    if not settings.socket_mode and settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET must be set to serve Slack over HTTP (or set SLACK_APP_TOKEN for Socket Mode).")
    runtime = await Runtime.start(settings, host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(f"cio-launchbot serving on {runtime.url}", flush=True)
    await stop.wait()
    log.info("shutting down: finishing in-flight work")
    await runtime.stop()
    if sandbox is not None:
        await sandbox.stop()
    return 0


# -- console and run ----------------------------------------------------------------------
async def _console_session(db_path: Path | None, script: Sequence[str] | None) -> int:
    from bot.app import Runtime
    from bot.sandbox.world import SANDBOX_OPERATOR, Sandbox
    from handlers.console import Console

    async with Sandbox() as sandbox:
        env = dict(os.environ)
        # the console is the Slack client: Slack is always the sandbox here
        for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL"):
            env.pop(key, None)
        env = sandbox.overlay(env)
        if db_path is not None:
            env["CIO_DB_PATH"] = str(db_path)
        settings = load_settings(env)
        runtime = await Runtime.start(settings, port=0)
        try:
            channel = settings.launch_channel or "C0LAUNCH01"
            if channel not in sandbox.slack.channels:
                sandbox.slack.channels[channel] = {"id": channel, "name": "cio-launch", "is_member": True}
            console = Console(runtime, sandbox.slack, user=SANDBOX_OPERATOR, channel=channel)
            if script is None:
                await console.interact()
            else:
                for line in script:
                    if not await console.line(line):
                        break
        finally:
            await runtime.stop()
    return 0


async def console(args: argparse.Namespace) -> int:
    return await _console_session(None, None)


async def sandbox_only(args: argparse.Namespace) -> int:
    from bot.sandbox.world import Sandbox

    async with Sandbox() as sandbox:
        print("Sandbox fakes running. Point the bot at them with:")
        for key, value in sandbox.env().items():
            print(f"  export {key}={value}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    return 0


async def rehearse(args: argparse.Namespace) -> int:
    """A whole launch on the sandbox; exit 0 when every step behaved, 1 naming the step that did not."""
    from bot.rehearsal import rehearse as play

    ok, _ = await play(speed=args.speed, out=sys.stdout, chart_path=args.chart)
    return 0 if ok else 1


async def review(args: argparse.Namespace) -> int:
    return await asyncio.to_thread(export_review, args)


def export_review(args: argparse.Namespace) -> int:
    """The review of the latest launch in CIO_DB_PATH, as markdown or JSON (read-only)."""
    from bot.errors import UserError
    from bot.review import DEFAULT_READERS, build_report, render_json, render_markdown
    from bot.review_chart import render_chart
    from bot.store import Store

    settings = load_settings()
    if not Path(settings.db_path).is_file():
        print(f"There is no database at {settings.db_path}: set CIO_DB_PATH to the bot's database file.",
              file=sys.stderr)
        return 2
    store = Store(settings.db_path)
    try:
        report = build_report(store, settings, DEFAULT_READERS, now=time.time(), channel_id=args.channel,
                              launch_id=args.launch)
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        store.close()
    text = render_markdown(report) if args.format == "markdown" else render_json(report) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    if args.chart:
        Path(args.chart).write_bytes(render_chart(report.chart))
    return 0


async def check(args: argparse.Namespace) -> int:
    if args.domain or args.dkim_selector or args.nameserver:
        # a DNS audit of the domain named: no Customer.io credentials needed
        if any(c != "deliverability" for c in args.categories):
            print("configuration error: --domain, --dkim-selector and --nameserver go with "
                  "`cio-bot check deliverability` only.", file=sys.stderr)
            return 2
        from bot.deliverability_cli import run_cli

        argv = ["--format", args.format]
        if args.domain:
            argv += ["--domain", args.domain]
        for selector in args.dkim_selector or ():
            argv += ["--dkim-selector", selector]
        for server in args.nameserver or ():
            argv += ["--nameserver", server]
        return await run_cli(argv)
    from bot.readiness import cli_check

    return await cli_check(args.categories, environment=args.env, fmt=args.format)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cio-bot", description="Take a Customer.io integration to production safely.")
    parser.add_argument("--log-level", default=os.environ.get("CIO_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve Slack (HTTP or Socket Mode), /healthz and webhooks")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    p.set_defaults(func=serve)
    p = sub.add_parser("console", help="type /cio commands in a terminal")
    p.set_defaults(func=console)
    p = sub.add_parser("sandbox", help="run the local fakes of Slack, Customer.io and LaunchDarkly")
    p.set_defaults(func=sandbox_only)
    p = sub.add_parser("run", help="the main job on embedded defaults (what `make run` does): the rehearsal")
    _rehearse_args(p)
    p = sub.add_parser("rehearse", help="play a whole launch on the built-in sandbox; exit 0 = every step behaved")
    _rehearse_args(p)
    p = sub.add_parser("review", help="the post-launch review of the latest launch in CIO_DB_PATH")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--output", type=Path, default=None, help="write to this file (default: standard output)")
    p.add_argument("--chart", type=Path, default=None, help="also write the chart (PNG) to this file")
    p.add_argument("--channel", default=None, help="the launch channel's ID (default: the latest launch)")
    p.add_argument("--launch", type=int, default=None, help="a launch ID (default: the latest launch)")
    p.set_defaults(func=review)
    p = sub.add_parser("check", help="readiness checks: exit 0 = go, 1 = no-go, 2 = configuration error")
    p.add_argument("categories", nargs="*", metavar="category",
                   help="credentials integration campaigns deliverability monitoring testing documentation rollback")
    p.add_argument("--env", choices=("production", "staging"), default="production")
    p.add_argument("--format", choices=("text", "json"), default="text")
    dns = p.add_argument_group("deliverability of any domain (DNS only)")
    dns.add_argument("--domain", help="check this sending domain's SPF, DKIM and DMARC (default: CIO_SENDING_DOMAIN)")
    dns.add_argument("--dkim-selector", action="append", metavar="S", help="a DKIM selector (repeatable)")
    dns.add_argument("--nameserver", action="append", metavar="HOST:PORT", help="a resolver (repeatable)")
    p.set_defaults(func=check)
    return parser


def _rehearse_args(p: argparse.ArgumentParser) -> None:
    from bot.rehearsal import DEFAULT_SPEED

    p.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                   help=f"simulated time runs N times faster than real time (default {DEFAULT_SPEED:g}; "
                        "0 = no pauses)")
    p.add_argument("--chart", type=Path, default=None, help="also save the review's chart (PNG) here")
    p.set_defaults(func=rehearse)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = args.command in ("console", "run", "check", "rehearse", "review")
    # the rehearsal's transcript is the output: only errors go to stderr beside it
    transcript = args.command in ("run", "rehearse")
    setup_logging(("ERROR" if transcript else "WARNING") if quiet and args.log_level == "INFO" else args.log_level)
    try:
        return asyncio.run(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

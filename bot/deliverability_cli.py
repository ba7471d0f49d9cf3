"""``check deliverability``: SPF, DKIM, DMARC and return path of a sending domain.

    cio-bot check deliverability --domain D [--dkim-selector S]... [--nameserver HOST:PORT]...
                                 [--format text|json]

Defaults come from the environment (CIO_SENDING_DOMAIN, CIO_DKIM_SELECTORS,
CIO_DNS_NAMESERVERS) and the ``[deliverability]`` table of CIO_CONFIG; options win.
Exit status: 0 when nothing blocking failed, 1 on no-go, 2 on bad arguments or config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from bot.config import ConfigError, Settings, parse_nameserver
from bot.deliverability import DeliverabilityRun, expectation_from_settings, run_deliverability
from bot.providers.dns import DEFAULT_TIMEOUT
from checks.base import CheckResult, Status
from checks.deliverability import ReturnPathExpectation, is_go

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ICONS = {
    Status.PASS: "PASS",
    Status.WARN: "WARN",
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.SKIP: "SKIP",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cio-bot check deliverability",
        description="Check SPF, DKIM, DMARC and the Customer.io return path of a sending domain over DNS.",
    )
    parser.add_argument("--domain", help="sending (From:) domain; default CIO_SENDING_DOMAIN")
    parser.add_argument(
        "--dkim-selector",
        action="append",
        default=None,
        metavar="S",
        help="DKIM selector to check (repeatable); default CIO_DKIM_SELECTORS",
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="DNS server to ask (repeatable); default CIO_DNS_NAMESERVERS, else the system's",
    )
    parser.add_argument(
        "--return-path-domain",
        metavar="D",
        help="Customer.io sending subdomain (cio<digits>.<domain>)",
    )
    parser.add_argument(
        "--return-path-spf-include",
        action="append",
        default=None,
        metavar="D",
        help="SPF include Customer.io asks for on the return path (repeatable)",
    )
    parser.add_argument(
        "--return-path-mx",
        action="append",
        default=None,
        metavar="HOST",
        help="MX host Customer.io asks for on the return path (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds per DNS query (default %(default)s)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(
    argv: list[str], *, env: Mapping[str, str] | None = None, out: TextIO | None = None
) -> int:
    """Synchronous entry point (runs its own event loop)."""
    return asyncio.run(run_cli(argv, env=env, out=out))


async def run_cli(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, out: TextIO | None = None
) -> int:
    """The command, for callers that already run an event loop (``cio-bot``'s ``main``)."""
    out = out or sys.stdout
    args_in = list(argv)
    if args_in[:2] == ["check", "deliverability"]:
        args_in = args_in[2:]
    elif args_in[:1] == ["deliverability"]:
        args_in = args_in[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse: 2 on bad arguments, 0 for --help
        return int(exc.code or 0)

    try:
        settings = Settings.from_env(os.environ if env is None else env)
        domain = (args.domain or settings.sending_domain or "").strip().lower().rstrip(".")
        if not domain:
            raise ConfigError("--domain is required (or set CIO_SENDING_DOMAIN).")
        if not _DOMAIN.match(domain):
            raise ConfigError(
                f"--domain must be a domain name such as example.com, got {domain!r}."
            )
        selectors = (
            tuple(args.dkim_selector) if args.dkim_selector is not None else settings.dkim_selectors
        )
        nameservers = (
            tuple(parse_nameserver(n.strip(), "--nameserver") for n in args.nameserver)
            if args.nameserver is not None
            else settings.dns_nameservers
        )
        expected = _expectation(args, expectation_from_settings(settings))
        if args.timeout <= 0:
            raise ConfigError("--timeout must be a positive number of seconds.")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    run = await run_deliverability(
        domain,
        dkim_selectors=selectors,
        nameservers=nameservers,
        expected=expected,
        timeout=args.timeout,
    )
    go = is_go(run.results)
    if args.format == "json":
        json.dump(to_json(run), out, indent=2)
        out.write("\n")
    else:
        out.write(render_text(run))
    return 0 if go else 1


def _expectation(
    args: argparse.Namespace, base: ReturnPathExpectation | None
) -> ReturnPathExpectation | None:
    if not (args.return_path_domain or args.return_path_spf_include or args.return_path_mx):
        return base
    base = base or ReturnPathExpectation()
    table = {
        "return_path_domain": args.return_path_domain or base.return_path_domain,
        "return_path_spf_include": args.return_path_spf_include or list(base.spf_includes),
        "return_path_mx": args.return_path_mx or list(base.mx_hosts),
        "dkim_domain": base.dkim_domain,
    }
    try:
        return ReturnPathExpectation.from_mapping({k: v for k, v in table.items() if v})
    except ValueError as exc:
        raise ConfigError(str(exc).replace("[deliverability] ", "--")) from None


def to_json(run: DeliverabilityRun) -> dict[str, object]:
    return {
        "domain": run.domain,
        "verdict": "go" if is_go(run.results) else "no-go",
        "results": [r.to_dict() for r in run.results],
        "dns": {"queries": run.stats.query_count, "distinct_names": run.stats.distinct_names},
    }


def render_text(run: DeliverabilityRun) -> str:
    lines = [f"Deliverability of {run.domain}", ""]
    for r in run.results:
        advisory = (
            " (advisory)" if r.status in (Status.FAIL, Status.ERROR) and not r.blocks_launch else ""
        )
        lines.append(f"[{ICONS[r.status]:5}] {r.id}: {r.summary}{advisory}")
        if r.status is not Status.PASS:
            if r.rule:
                lines.append(f"        rule:  {r.rule}")
            if r.found:
                lines.append(f"        found: {r.found}")
            if r.fix:
                lines.append(f"        fix:   {r.fix}")
    lines.append("")
    lines.append(_verdict_line(run.results))
    lines.append(f"({run.stats.query_count} DNS queries, {run.stats.distinct_names} names)")
    return "\n".join(lines) + "\n"


def _verdict_line(results: Sequence[CheckResult]) -> str:
    blocking = [r for r in results if r.blocks_launch]
    if not blocking:
        warns = sum(r.status is Status.WARN for r in results)
        return f"Verdict: GO ({warns} warning{'s' if warns != 1 else ''})"
    return f"Verdict: NO-GO ({len(blocking)} blocking: {', '.join(r.id for r in blocking)})"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))

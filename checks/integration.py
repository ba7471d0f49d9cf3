"""integration: audit the event catalog (sample identify and event payloads).

The catalog is a YAML or JSON file named in CIO_CONFIG (``[checks] event_catalog``)::

    identify:
      - id: user-123
        attributes: {email: ada@example.com, created_at: 1764547200, plan: pro}
    events:
      - name: order_completed
        timestamp: 1764547200
        data: {order_id: "A-1", total: 42.5}

Rules are Customer.io's documented data limits: event names <= 100 bytes, attribute
names <= 150 bytes, values <= 1000 bytes, <= 300 attributes per call, event data <=
100,000 bytes, timestamps in Unix seconds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.context import CheckContext, Providers
from checks.engine import Outcome, RunFunc, check, failed, passed, skipped

LIMITS_RULE = "Customer.io data limits"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![0-9])\+?\d(?:[\s().-]?\d){6,14}(?![0-9])")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
#: Unix seconds are below this (year 5138); anything larger is milliseconds or finer
SECONDS_CEILING = 100_000_000_000
RESERVED_IDENTIFY_SET_BY_CIO = ("cio_id", "_timestamp")
RESERVED_EVENT_DATA = ("cio_id", "_timestamp", "anonymous_id")


@dataclass
class Catalog:
    path: str
    identify: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (label, attributes)
    identify_ids: list[tuple[str, Any]] = field(default_factory=list)  # (label, id)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (label, event body)


class CatalogError(Exception):
    pass


def parse_catalog(path: str) -> Catalog:
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{path} is not UTF-8 text") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # yaml and json errors both describe the position
        raise CatalogError(f"{path} is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} "
                           f"({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path} must be a mapping with 'identify' and 'events' lists")
    catalog = Catalog(path)
    identify = data.get("identify") or []
    events = data.get("events") or []
    if not isinstance(identify, list) or not isinstance(events, list):
        raise CatalogError(f"{path}: 'identify' and 'events' must be lists")
    for n, item in enumerate(identify, start=1):
        if not isinstance(item, dict):
            raise CatalogError(f"{path}: identify #{n} is not a mapping")
        if isinstance(item.get("attributes"), dict):
            attrs = dict(item["attributes"])
            ident = item.get("id")
        else:
            attrs = {k: v for k, v in item.items() if k != "id"}
            ident = item.get("id")
        label = f"identify #{n}" + (f" ({_short(str(ident))})" if ident is not None else "")
        catalog.identify.append((label, attrs))
        catalog.identify_ids.append((label, ident))
    for n, item in enumerate(events, start=1):
        if not isinstance(item, dict):
            raise CatalogError(f"{path}: event #{n} is not a mapping")
        label = f"event #{n}" + (f" `{_short(str(item.get('name')))}`" if item.get("name") is not None else "")
        catalog.events.append((label, item))
    if not catalog.identify and not catalog.events:
        raise CatalogError(f"{path} lists no identify or event samples")
    return catalog


async def _parsed(ctx: CheckContext, p: Providers) -> Catalog:
    """The configured catalog, parsed once per run; raises :class:`CatalogError`."""
    return await p.memo.once("catalog", lambda: asyncio.to_thread(parse_catalog, ctx.catalog_path or ""))


async def load(ctx: CheckContext, p: Providers) -> Catalog | Outcome:
    """The catalog, or the outcome that says why it cannot be audited."""
    if not ctx.catalog_path:
        return skipped("no event catalog is configured (see integration.catalog)")
    try:
        return await _parsed(ctx, p)
    except CatalogError:
        return skipped("the event catalog could not be read (see integration.catalog)")


def audits_catalog(check_id: str, title: str) -> Callable[[Callable[[Catalog], Outcome]], RunFunc]:
    """Register a check that audits the event catalog; it is skipped, saying why, when there is
    no catalog to audit."""

    def decorate(audit: Callable[[Catalog], Outcome]) -> RunFunc:
        @functools.wraps(audit)
        async def run(ctx: CheckContext, p: Providers) -> Outcome:
            catalog = await load(ctx, p)
            return catalog if isinstance(catalog, Outcome) else audit(catalog)

        return check(check_id, title)(run)

    return decorate


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list(items: list[str], limit: int = 3) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _failed(bad: list[str], head: str, fix: str, **kw: Any) -> Outcome:
    return failed(f"{len(bad)} {head}: {_list(bad)}", fix, detail=_detail(bad), **kw)


def _detail(items: list[str], limit: int = 50) -> str:
    lines = items[:limit] + ([f"… and {len(items) - limit} more"] if len(items) > limit else [])
    return "\n".join(lines)


def _nbytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    return len(json.dumps(value, default=str, separators=(",", ":")).encode())


@check("integration.catalog", "Event catalog configured and readable")
async def catalog_check(ctx: CheckContext, p: Providers) -> Outcome:
    if not ctx.catalog_path:
        return failed("No event catalog is configured",
                      "Write the events and identify calls you send (with sample payloads) to a YAML or "
                      "JSON file and name it in CIO_CONFIG: [checks] event_catalog = \"events.yaml\".")
    try:
        catalog = await _parsed(ctx, p)
    except CatalogError as exc:
        return failed(f"The event catalog cannot be used: {exc}",
                      "Fix the file (a mapping with 'identify' and 'events' lists) or point "
                      "[checks] event_catalog at the right one.")
    return passed(f"{len(catalog.events)} event(s) and {len(catalog.identify)} identify sample(s) "
                  f"in {Path(catalog.path).name}")


@audits_catalog("integration.event_names", "Event names are snake_case and at most 100 bytes")
def event_names(catalog: Catalog) -> Outcome:
    bad = []
    for label, event in catalog.events:
        name = event.get("name")
        if not isinstance(name, str) or not name:
            bad.append(f"{label}: no name")
        elif len(name.encode()) > 100:
            bad.append(f"{label}: {len(name.encode())} bytes (max 100)")
        elif not SNAKE.match(name):
            bad.append(f"{label}: not snake_case")
    if bad:
        return _failed(bad, "event name(s) break the naming rules",
                      "Rename the events to snake_case (lowercase words joined by _), at most 100 bytes, "
                      "in the code that sends them and in the catalog.", rule=LIMITS_RULE)
    return passed(f"All {len(catalog.events)} event names are snake_case and short enough")


@audits_catalog("integration.event_name_pii", "No personal data (emails, phone numbers) in event names")
def event_name_pii(catalog: Catalog) -> Outcome:
    bad = []
    for label, event in catalog.events:
        name = str(event.get("name") or "")
        if EMAIL.search(name):
            bad.append(f"{label}: contains an email address")
        elif PHONE.search(name):
            bad.append(f"{label}: contains a phone number")
    if bad:
        return _failed(bad, "event name(s) carry personal data",
                      "Keep event names generic (e.g. `signed_up`) and put the person's details in "
                      "profile attributes or event data.")
    return passed("No email address or phone number in any event name")


def _timestamp_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        if value >= SECONDS_CEILING:
            return "in milliseconds" if value < SECONDS_CEILING * 1000 else "finer than milliseconds"
        return None
    if isinstance(value, str):
        text = value.strip()
        if ISO_DATE.match(text):
            return "an ISO date string"
        if text.isdigit():
            return "a string of digits" + (" in milliseconds" if int(text) >= SECONDS_CEILING else "")
        return "a string"
    return None


def _timestamp_fields(attrs: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in attrs.items()
            if isinstance(k, str) and (k.endswith("_at") or k in ("timestamp", "time"))]


@audits_catalog("integration.timestamps", "Timestamps are Unix seconds")
def timestamps(catalog: Catalog) -> Outcome:
    bad = []
    for label, event in catalog.events:
        if "timestamp" in event and (why := _timestamp_problem(event["timestamp"])):
            bad.append(f"{label}: timestamp {event['timestamp']!r} is {why}")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        for key, value in _timestamp_fields(data):
            if why := _timestamp_problem(value):
                bad.append(f"{label}: data.{key} {value!r} is {why}")
    for label, attrs in catalog.identify:
        for key, value in _timestamp_fields(attrs):
            if why := _timestamp_problem(value):
                bad.append(f"{label}: {key} {value!r} is {why}")
    if bad:
        return _failed(bad, "timestamp(s) are not Unix seconds",
                      "Send timestamps as whole Unix seconds (e.g. 1764547200): divide milliseconds by "
                      "1000 and convert ISO strings; Customer.io reads milliseconds as far-future dates "
                      "and only events from the last 72 hours trigger campaigns.",
                      rule="Customer.io timestamps are Unix seconds")
    return passed("Every timestamp is in Unix seconds")


@audits_catalog("integration.identify_email", "Identify calls carry an email")
def identify_email(catalog: Catalog) -> Outcome:
    if not catalog.identify:
        return failed("The catalog has no identify sample",
                      "Add a sample identify payload (id and attributes, including email) to the catalog.")
    bad = [label for label, attrs in catalog.identify if not attrs.get("email")]
    if bad:
        return _failed(bad, "identify call(s) without `email`",
                      "Send the person's `email` attribute on identify; email campaigns cannot reach "
                      "profiles without one.")
    return passed(f"All {len(catalog.identify)} identify samples carry `email`")


@audits_catalog("integration.attribute_limits", "Attribute names, values and counts within limits")
def attribute_limits(catalog: Catalog) -> Outcome:
    bad = []
    for (label, attrs), (_, ident) in zip(catalog.identify, catalog.identify_ids, strict=True):
        if ident is not None and _nbytes(str(ident)) > 150:
            bad.append(f"{label}: id is {_nbytes(str(ident))} bytes (max 150)")
        if len(attrs) > 300:
            bad.append(f"{label}: {len(attrs)} attributes (max 300 per call)")
        for name, value in attrs.items():
            if _nbytes(str(name)) > 150:
                bad.append(f"{label}: attribute name `{str(name)[:40]}…` is {_nbytes(str(name))} bytes (max 150)")
            if _nbytes(value) > 1000:
                bad.append(f"{label}: value of `{name}` is {_nbytes(value)} bytes (max 1000)")
    if bad:
        return _failed(bad, "attribute limit(s) exceeded",
                      "Shorten names and values (store large data elsewhere and send a reference), and "
                      "split identify calls with more than 300 attributes.", rule=LIMITS_RULE)
    return passed("Attribute names, values and counts are within Customer.io's limits")


@audits_catalog("integration.event_size", "Event data at most 100 KB")
def event_size(catalog: Catalog) -> Outcome:
    bad = []
    largest = 0
    for label, event in catalog.events:
        size = _nbytes(event.get("data") or {})
        largest = max(largest, size)
        if size > 100_000:
            bad.append(f"{label}: {size:,} bytes")
    if bad:
        return _failed(bad, "event(s) carry more than 100,000 bytes of data",
                      "Send only what campaigns use; keep large payloads in your system and pass an id.",
                      rule=LIMITS_RULE)
    return passed(f"Largest event data is {largest:,} bytes (limit 100,000)")


@audits_catalog("integration.reserved_attributes", "Reserved attributes used as Customer.io defines them")
def reserved(catalog: Catalog) -> Outcome:
    bad = []
    for (label, attrs), (_, ident) in zip(catalog.identify, catalog.identify_ids, strict=True):
        for key in RESERVED_IDENTIFY_SET_BY_CIO:
            if key in attrs:
                bad.append(f"{label}: sets `{key}`, which Customer.io assigns")
        if "id" in attrs and ident is not None and str(attrs["id"]) != str(ident):
            bad.append(f"{label}: attribute `id` differs from the profile id")
        if "email" in attrs and attrs["email"] and not (isinstance(attrs["email"], str)
                                                        and EMAIL.fullmatch(attrs["email"].strip())):
            bad.append(f"{label}: `email` is not an email address")
        if "unsubscribed" in attrs and not isinstance(attrs["unsubscribed"], bool):
            bad.append(f"{label}: `unsubscribed` must be true or false")
        if "created_at" in attrs and (isinstance(attrs["created_at"], bool)
                                      or not isinstance(attrs["created_at"], int | float | str)):
            bad.append(f"{label}: `created_at` must be a Unix timestamp")
    for label, event in catalog.events:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        for key in RESERVED_EVENT_DATA:
            if key in data:
                bad.append(f"{label}: data sets reserved `{key}`")
    if bad:
        return _failed(bad, "reserved attribute(s) misused",
                      "Rename your own fields that collide with reserved ones (id, email, cio_id, "
                      "anonymous_id, created_at, unsubscribed, _timestamp) and send reserved ones only "
                      "with the meaning Customer.io gives them.",
                      rule="Customer.io reserved attributes")
    return passed("Reserved attributes are used as Customer.io defines them")

"""The readiness engine: a registry of checks, run concurrently, each under its own timeout.

A *check* has an id (``credentials.region``), a category, a title, a severity and an async
``run(context, providers)`` returning an :class:`Outcome` (the engine stamps id, title,
severity and duration on it) or full :class:`~checks.base.CheckResult` items. A *group*
is a check that contributes many results from one function (the DNS deliverability
checks plug in that way: ``register_group``).

:meth:`Engine.stream` yields results as they finish. A check that hangs past its
timeout, raises, or meets a provider 429/5xx becomes ``error`` with the reason; the rest
of the run completes. The run as a whole stops at its deadline, turning whatever is
still running into ``error``.

The DNS deliverability checks plug in as a group (``checks/dns.py``); the bot passes the
resolver in ``Providers.extra["dns"]`` (``bot/readiness.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from checks.base import CATEGORIES, CheckResult, Severity, Status
from checks.context import CheckContext, Memo, Providers, http_status


@dataclass(frozen=True)
class Outcome:
    """What a single check found; the engine turns it into a CheckResult."""

    status: Status
    summary: str
    detail: str = ""
    fix: str = ""
    rule: str = ""
    found: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def passed(summary: str, detail: str = "", **kw: Any) -> Outcome:
    return Outcome(Status.PASS, summary, detail, **kw)


def failed(summary: str, fix: str, detail: str = "", **kw: Any) -> Outcome:
    return Outcome(Status.FAIL, summary, detail, fix, **kw)


def warned(summary: str, fix: str, detail: str = "", **kw: Any) -> Outcome:
    return Outcome(Status.WARN, summary, detail, fix, **kw)


def skipped(reason: str, detail: str = "", **kw: Any) -> Outcome:
    return Outcome(Status.SKIP, reason, detail, **kw)


RunFunc = Callable[[CheckContext, Providers], Awaitable["Outcome | CheckResult | list[CheckResult]"]]


@dataclass(frozen=True)
class Check:
    id: str
    category: str
    title: str
    severity: Severity
    run: RunFunc
    timeout: float | None = None  # None: the engine's default
    #: how many results it contributes (groups); used for "Running N checks…"
    planned: int = 1
    group: bool = False


REGISTRY: dict[str, Check] = {}


def _register(entry: Check) -> None:
    if entry.category not in CATEGORIES:
        raise ValueError(f"check {entry.id}: unknown category {entry.category!r}")
    if entry.id in REGISTRY and REGISTRY[entry.id].run is not entry.run:
        raise RuntimeError(f"check {entry.id} is registered twice")
    REGISTRY[entry.id] = entry


def check(check_id: str, title: str, *, severity: Severity = Severity.BLOCKING,
          timeout: float | None = None) -> Callable[[RunFunc], RunFunc]:
    """Register a check; its category is the id's first part."""

    def decorate(func: RunFunc) -> RunFunc:
        _register(Check(check_id, check_id.split(".", 1)[0], title, severity, func, timeout))
        return func

    return decorate


def register_group(group_id: str, category: str, title: str, run: RunFunc, *, planned: int = 1,
                   severity: Severity = Severity.BLOCKING, timeout: float | None = None) -> None:
    """Plug in a function that returns many results for one category (e.g. DNS checks)."""
    _register(Check(group_id, category, title, severity, run, timeout, planned, group=True))


def load_checks() -> dict[str, Check]:
    """Import every module that registers checks."""
    import checks.campaigns  # noqa: F401
    import checks.credentials  # noqa: F401
    import checks.dns  # noqa: F401
    import checks.documentation  # noqa: F401
    import checks.integration  # noqa: F401
    import checks.monitoring  # noqa: F401
    import checks.rollback  # noqa: F401
    import checks.signoff  # noqa: F401
    import checks.testing  # noqa: F401
    import checks.webhooks  # noqa: F401

    return REGISTRY


class UnknownCategory(ValueError):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"{', '.join(repr(n) for n in names)} {'is not a' if len(names) == 1 else 'are not'} "
            f"check categor{'y' if len(names) == 1 else 'ies'}; choose from {', '.join(CATEGORIES)}."
        )


def select(categories: Iterable[str] | None = None,
           registry: dict[str, Check] | None = None) -> list[Check]:
    """The checks of the given categories (all when none), in category order."""
    registry = REGISTRY if registry is None else registry
    wanted = [c.lower() for c in (categories or ())]
    unknown = [c for c in wanted if c not in CATEGORIES]
    if unknown:
        raise UnknownCategory(unknown)
    chosen = set(wanted or CATEGORIES)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    entries = [c for c in registry.values() if c.category in chosen]
    return sorted(entries, key=lambda c: order[c.category])


def verdict(results: Iterable[CheckResult]) -> str:
    """``go`` when no blocking check failed or errored, else ``no-go``."""
    return "no-go" if any(r.blocks_launch for r in results) else "go"


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    out = {s.value: 0 for s in Status}
    for r in results:
        out[r.status.value] += 1
    return out


def describe_error(exc: BaseException) -> str:
    """The reason a check could not run, as one sentence."""
    status = http_status(exc)
    text = str(exc).strip() or type(exc).__name__
    if status == 429:
        return f"the provider kept rate-limiting (HTTP 429): {text}"
    if status is not None and status >= 500:
        return f"the provider had a server error (HTTP {status}): {text}"
    if status is None and not str(exc).strip():
        return f"the check failed with {type(exc).__name__}"
    return text


class Engine:
    def __init__(self, checks: Sequence[Check] | None = None, *, timeout: float = 10.0,
                 deadline: float = 60.0) -> None:
        self.checks = list(checks) if checks is not None else select()
        self.timeout = timeout
        self.deadline = deadline

    @property
    def planned(self) -> int:
        return sum(c.planned for c in self.checks)

    async def _one(self, entry: Check, ctx: CheckContext, providers: Providers) -> list[CheckResult]:
        limit = entry.timeout if entry.timeout is not None else self.timeout
        started = time.perf_counter()
        try:
            found = await asyncio.wait_for(entry.run(ctx, providers), limit)
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return [self._error(entry, f"no answer within {limit:g} s (the provider may be hanging)",
                                elapsed, "Check the provider's status page and the base URL, then rerun.")]
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            status = http_status(exc)
            fix = ("Wait a minute and rerun; if it persists, check the provider's status page."
                   if status == 429 or (status is not None and status >= 500) else
                   "Read the reason above, fix the cause and rerun the check.")
            return [self._error(entry, describe_error(exc), elapsed, fix)]
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(found, Outcome):
            return [CheckResult(entry.id, entry.category, entry.title, found.status, found.summary,
                                found.detail, found.fix, entry.severity, found.rule, found.found,
                                round(elapsed, 1), dict(found.data))]
        items = [found] if isinstance(found, CheckResult) else list(found)
        return [r if r.duration_ms else replace(r, duration_ms=round(elapsed, 1)) for r in items]

    @staticmethod
    def _error(entry: Check, reason: str, elapsed: float, fix: str) -> CheckResult:
        return CheckResult(entry.id, entry.category, entry.title, Status.ERROR,
                           f"Could not run: {reason}", "", fix, entry.severity,
                           duration_ms=round(elapsed, 1))

    async def stream(self, ctx: CheckContext, providers: Providers) -> AsyncIterator[CheckResult]:
        """Every check at once; results in the order they finish."""
        providers = replace(providers, memo=Memo())
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        tasks = {asyncio.ensure_future(self._one(c, ctx, providers)): c for c in self.checks}
        end = loop.time() + self.deadline
        pending = set(tasks)
        try:
            while pending:
                remaining = end - loop.time()
                if remaining <= 0:
                    break
                done, pending = await asyncio.wait(pending, timeout=remaining,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    for result in task.result():
                        yield result
            for task in pending:
                task.cancel()
            elapsed = (time.perf_counter() - started) * 1000
            for task in pending:
                entry = tasks[task]
                yield self._error(entry, f"the run's deadline of {self.deadline:g} s passed first",
                                  elapsed, "Rerun this category alone; check the provider if it hangs again.")
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            providers.memo.cancel()

    async def run(self, ctx: CheckContext, providers: Providers,
                  on_result: Callable[[CheckResult], Awaitable[None] | None] | None = None
                  ) -> list[CheckResult]:
        """All results, in registry order; ``on_result`` sees each as it finishes."""
        results: list[CheckResult] = []
        async for result in self.stream(ctx, providers):
            results.append(result)
            if on_result is not None:
                maybe = on_result(result)
                if maybe is not None:
                    await maybe
        return order_results(results, self.checks)


def order_results(results: Iterable[CheckResult], checks: Sequence[Check]) -> list[CheckResult]:
    position = {c.id: i for i, c in enumerate(checks)}
    cat = {c: i for i, c in enumerate(CATEGORIES)}

    def key(r: CheckResult) -> tuple[int, int, str]:
        base = position.get(r.id)
        if base is None:  # a group's results carry their own ids: group order by prefix
            base = next((p for cid, p in position.items() if r.id.startswith(cid + ".")), len(position))
        return cat.get(r.category, 99), base, r.id

    return sorted(results, key=key)

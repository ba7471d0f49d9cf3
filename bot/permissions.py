"""Who may change traffic: the user IDs and user groups in ``CIO_OPERATORS``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.providers.http import ProviderError
from bot.providers.slack import SlackGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class Permissions:
    def __init__(self, operators: tuple[str, ...], slack: SlackGateway, *, lookup_timeout: float = 1.5) -> None:
        self.users = frozenset(o for o in operators if o[0] in "UW")
        self.groups = tuple(o for o in operators if o[0] == "S")
        self.slack = slack
        self.lookup_timeout = lookup_timeout

    @property
    def configured(self) -> bool:
        return bool(self.users or self.groups)

    async def check(self, user_id: str) -> Decision:
        if user_id in self.users:
            return Decision(True, "listed in CIO_OPERATORS")
        if not self.configured:
            return Decision(False, "no operators are configured (set CIO_OPERATORS)")
        failures = []
        for group in self.groups:
            try:
                members = await asyncio.wait_for(self.slack.usergroup_members(group), self.lookup_timeout)
            except (ProviderError, TimeoutError) as exc:
                log.warning("could not read members of user group %s: %s", group, exc)
                failures.append(group)
                continue
            if user_id in members:
                return Decision(True, f"member of user group {group}")
        if failures:
            return Decision(
                False,
                "you are not listed as an operator and the membership of "
                + ", ".join(f"<!subteam^{g}>" for g in failures)
                + " could not be read from Slack right now; try again in a minute",
            )
        return Decision(False, "you are not in CIO_OPERATORS")

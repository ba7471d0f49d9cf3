"""Which process owns a row, and whether that process is gone.

A process that takes durable work (a traffic change's lock, a readiness run) writes its owner
id, ``host:pid:random``, next to it. After a crash, a process on the same host can tell at
once that the owner is dead (its pid no longer runs, or the pid is now its own); an owner on
another host cannot be judged from here, and the caller falls back to a lease or a deadline.
Several services in one process (tests) each have their own id, kept in a set while alive.
"""

from __future__ import annotations

import os
import socket
import uuid

_LIVE: set[str] = set()


def new_owner_id() -> str:
    """An id for this process's service, alive until :func:`release`."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    _LIVE.add(owner)
    return owner


def release(owner: str) -> None:
    """The service has stopped: from now on its id reads as gone."""
    _LIVE.discard(owner)


def alive_here(owner: str | None) -> bool:
    """True for a service of this very process that has not stopped."""
    return owner in _LIVE


def process_gone(owner: str | None) -> bool:
    """True when the owner is known to be dead: it ran on this host and its pid is ours (a
    restart that reused the pid, or a stopped service of this process) or no longer exists.
    False when it may be alive, or cannot be judged (another host, an id of another form)."""
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by another user
    return False

"""Owner ids of processes for restart tests (see bot/liveness.py)."""

from __future__ import annotations

import socket
import subprocess


def dead_owner() -> str:
    """The owner id of a process of this host that has exited (as after a SIGKILL)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:cafe"


OTHER_HOST_OWNER = "other-host:4242:beef"  # a replica elsewhere: cannot be judged from here

"""Folder ownership between processes: an advisory ``flock`` on a lock file, held while the work runs.

The kernel releases the lock when its process ends, however it ends (``kill -9`` included), so a lock
file left behind by a killed process is never stale: the next process simply takes it. The file records
the owner's pid and host for the message a refused process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Iterator

from zoo.errors import UserError


class InUse(UserError):
    """Another process holds the lock (raised only with ``wait=False``)."""


def _owner(handle: object) -> str:
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)  # type: ignore[attr-defined]
        text = handle.read().strip()  # type: ignore[attr-defined]
        if text:
            return f" ({text[:100]})"
    return ""


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, what: str, *, wait: bool) -> Iterator[None]:
    """Hold ``lock_file`` exclusively for the ``with`` block.

    Args:
        lock_file: the lock file (created; its folder must exist).
        what: what the lock guards, for messages (e.g. ``"run folder runs/x"``).
        wait: wait for another holder to finish (a line on stderr says so); else refuse at once with a
            :class:`InUse` (a :class:`UserError`) naming the owner.
    """
    handle = open(lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held across the yield
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(handle)
            if not wait:
                raise InUse(
                    f"{what} is in use by another process{owner}; wait for it to finish or stop it"
                ) from None
            sys.stderr.write(f"waiting for another process{owner} using {what}\n")
            sys.stderr.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock

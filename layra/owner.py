"""Who holds a lock or a run: a process identity (host, boot, pid, start time) and whether that process is gone.

A crashed worker cannot release what it held. Its successor on the same host can tell at once that the owner
is dead (its pid is gone, or now belongs to a later process), instead of waiting for a TTL to lapse; an owner
on another host is judged by its heartbeat alone.
"""

import os
import socket
import uuid
from functools import lru_cache
from pathlib import Path

_SEP = "|"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process, or a zombie: it is dead, only
    not yet reaped). The start time tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 on; the command name before ")" may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


@lru_cache(maxsize=1)
def _machine() -> str:
    """The pid space this process lives in: host name, kernel boot and pid namespace (two containers given the
    same host name still differ in the namespace)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{_boot_id()}/{namespace}"


@lru_cache(maxsize=4)
def _identity(pid: int) -> str:
    return _SEP.join((_machine(), str(pid), _start_ticks(pid) or "-"))


def owner_identity() -> str:
    """This process: machine|pid|start ticks (cached per pid, so a forked child gets its own)."""
    return _identity(os.getpid())


def owner_token() -> str:
    """A lock token naming this process, unique per acquisition."""
    return f"{owner_identity()}{_SEP}{uuid.uuid4().hex}"


def owner_gone(owner: str) -> bool:
    """True when `owner` (an identity or a token) is a process of this host and boot that no longer runs.
    An owner elsewhere, or one we cannot parse, is not judged here (its heartbeat decides)."""
    parts = owner.split(_SEP)
    if len(parts) < 3:
        return False
    machine, pid, ticks = parts[:3]
    if machine != _machine() or "/-" in machine or not pid.isdigit():
        return False
    return _start_ticks(int(pid)) != ticks

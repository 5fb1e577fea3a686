"""The owner-aware lock (layra.locks) on the real Redis: a dead owner's lock is taken over at once, a live
owner's is not, and the heartbeat keeps a long holder's lock past its TTL."""

import os
import signal
import subprocess
import sys
import time

import pytest

from layra.locks import held
from layra.owner import owner_gone, owner_identity
from layra.redis import redis_client

# A process that takes the lock, says so, and holds it until killed.
_HOLDER = """
import sys, time
import django
django.setup()
from layra.locks import held
from layra.redis import redis_client
with held(redis_client("lock"), sys.argv[1], ttl=float(sys.argv[2]), wait=5) as lock:
    print("held" if lock else "busy", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder():
    """Start a process holding a lock (name, ttl); every one started is killed at the end."""
    started: list[subprocess.Popen] = []

    def start(name: str, ttl: float) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", _HOLDER, name, str(ttl)], stdout=subprocess.PIPE,
                                   text=True, env={**os.environ})
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_dead_owners_lock_is_taken_over_at_once(holder):
    process = holder("lock:test:dead", 120)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    started = time.monotonic()
    with held(redis_client("lock"), "lock:test:dead", ttl=120, wait=5) as lock:
        assert lock is not None, "the lock of a killed process is free for the next owner"
        assert lock.lock.taken_over_from and f"|{process.pid}|" in lock.lock.taken_over_from
    assert time.monotonic() - started < 2, "not after the TTL (120 s)"


def test_a_live_owners_lock_is_kept_from_others(holder):
    holder("lock:test:live", 120)
    with held(redis_client("lock"), "lock:test:live", ttl=120, wait=0.5) as lock:
        assert lock is None


def test_the_heartbeat_keeps_a_long_holders_lock_past_its_ttl(holder):
    holder("lock:test:long", 1)
    time.sleep(2.5)  # more than twice the TTL: only the holder's heartbeat keeps the key
    assert redis_client("lock").pttl("lock:test:long") > 0
    with held(redis_client("lock"), "lock:test:long", ttl=1, wait=0.3) as lock:
        assert lock is None


def test_a_lock_lost_to_another_owner_is_reported_by_check():
    client = redis_client("lock")
    with held(client, "lock:test:lost", ttl=60, wait=1) as lock:
        assert lock.check()
        client.set("lock:test:lost", "someone-else", px=60_000)
        assert not lock.check()
    assert client.get("lock:test:lost") == "someone-else", "the release never deletes another owner's lock"


def test_only_this_hosts_dead_processes_count_as_gone():
    me = owner_identity()
    assert not owner_gone(me)
    machine, pid, ticks = me.split("|")
    assert owner_gone(f"{machine}|{pid}|{int(ticks) + 1}"), "a reused pid is another process"
    assert not owner_gone(f"other-host/{machine.split('/', 1)[1]}|{pid}|0"), "another host: the TTL decides"
    assert not owner_gone("a legacy token without an owner")

"""Password hashing on a few low-priority threads of each process.

A login's Argon2 hash is ~25-45 ms of pure CPU (argon2-cffi drops the GIL while it runs). On the web tier a
burst of logins then took the cores from every other request: in bench_api a fifth of the requests were logins
and they used 40 % of the web CPU, so list pages queued behind them. Here the hashes run on a small pool whose
threads carry a raised nice value, so the kernel serves the short API requests first and gives the hashes the
CPU that is left; the pool size also bounds the CPU and memory (19 MiB a hash) that a login flood can take.
"""

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

from layra.process_local import ProcessLocal

T = TypeVar("T")


def _lower_priority(nice: int) -> None:
    """Give this thread at least the nice value `nice` (on Linux nice is per thread; elsewhere nothing)."""
    try:
        thread_id = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        if nice > current:
            os.setpriority(os.PRIO_PROCESS, thread_id, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: hashing still works, at normal priority
        pass


def _new_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.PASSWORD_HASH_THREADS, thread_name_prefix="password-hash",
                              initializer=_lower_priority, initargs=(settings.PASSWORD_HASH_NICE,))


_executor = ProcessLocal(_new_executor)  # a forked child never inherits the parent's threads


def run_hash(function: Callable[..., T], *args) -> T:
    """Run one hash or verify on the pool and wait for it; inline when the pool is turned off (0 threads)."""
    if settings.PASSWORD_HASH_THREADS <= 0:
        return function(*args)
    return _executor.get().submit(function, *args).result()

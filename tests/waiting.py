"""One way for a test to wait for something the product does by itself (a worker, a recovery, a purge)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, until: Callable[[T], object] = bool, timeout: float = 60,
               interval: float = 0.2, context: Callable[[], str] | None = None) -> T:
    """Call `probe` until `until(value)` holds and return that value; past `timeout`, fail with the last value
    and `context()` (a worker's log, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise AssertionError(f"not reached in {timeout:g}s; last value: {value!r:.500}{extra}")
        time.sleep(interval)

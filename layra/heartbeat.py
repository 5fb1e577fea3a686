"""A beat that runs beside long work: a thread calls `beat` every `every` seconds until the with-block ends.

Work that blocks for long (a model load, a big batch, a slow node) still beats, so its lease can be short and
a dead owner is noticed soon.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def beating(beat: Callable[[], object], *, every: float, name: str):
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception as exc:  # noqa: BLE001 - a store away for a moment: beat again next time
                logger.warning("%s: heartbeat failed (%s)", name, type(exc).__name__)

    thread = threading.Thread(target=loop, name=f"heartbeat {name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

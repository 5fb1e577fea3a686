"""A value built on first use in each process and shared by its threads (HTTP clients, thread pools)."""

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessLocal(Generic[T]):
    """`get()` builds the value once per process: a forked child (a gunicorn or Celery worker) builds its own,
    never using the parent's sockets or waiting on threads that do not exist in it. `reset()` forgets it."""

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._lock = threading.Lock()
        self._value: tuple[int, T] | None = None

    def get(self) -> T:
        with self._lock:
            if self._value is None or self._value[0] != os.getpid():
                self._value = (os.getpid(), self._factory())
            return self._value[1]

    def reset(self) -> None:
        with self._lock:
            self._value = None

"""A thread-safe in-process LRU bounded by the total size of its values (bytes, arrays)."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class SizedLRU:
    def __init__(self, *, max_bytes: int, size: Callable[[Any], int]):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: list) -> dict:
        found = {}
        with self._lock:
            for key in keys:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    found[key] = value
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put(self, key: Hashable, value: Any) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= self._size(old)
            self._items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self.bytes -= self._size(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

import threading

from layra.lru import SizedLRU


def test_evicts_least_recently_used_by_total_size():
    cache = SizedLRU(max_bytes=10, size=len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # "a" is now the most recent
    cache.put("c", b"1234")  # 12 bytes: "b" goes
    assert cache.get("b") is None and cache.get("a") == b"1234" and cache.get("c") == b"1234"
    assert cache.bytes == 8
    cache.put("a", b"12")  # replacing a value counts its new size only
    assert cache.bytes == 6
    cache.put("huge", b"x" * 11)  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and cache.bytes == 6
    assert cache.get_many(["a", "c", "zzz"]) == {"a": b"12", "c": b"1234"}
    cache.clear()
    assert cache.bytes == 0 and cache.get("a") is None


def test_size_stays_exact_under_concurrent_puts():
    cache = SizedLRU(max_bytes=1000, size=len)

    def fill(offset):
        for i in range(2000):
            cache.put((offset, i % 50), b"x" * (i % 7 + 1))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.bytes == sum(len(v) for v in cache._items.values()) <= 1000

"""A Redis lock that a crashed owner does not hold for long.

The key names its owner process (layra.owner) and lives a short TTL that a background thread keeps renewing
while the owner runs. When the owner dies, the lock goes at once for a contender on the same host (the pid is
gone) and within one TTL for any other; a long step (a model load, a big batch) never lets it lapse, since the
heartbeat is a thread of its own.
"""

import logging
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock

from layra.heartbeat import beating
from layra.owner import owner_gone, owner_token

logger = logging.getLogger(__name__)

# Replace the value only if it is still the orphan we saw: two contenders never both take it over.
_TAKEOVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3])
    return 1
end
return 0
"""


class OwnedLock(Lock):
    """redis-py's Lock whose token names the owner process, and which takes over a lock whose owner is gone."""

    def __init__(self, redis: Redis, name: str, *, ttl: float, wait: float):
        super().__init__(redis, name, timeout=ttl, blocking_timeout=wait, sleep=0.2, thread_local=False)
        self._takeover = redis.register_script(_TAKEOVER)
        self.taken_over_from: str | None = None

    def acquire(self, **kwargs) -> bool:
        return super().acquire(token=owner_token(), **kwargs)

    def do_acquire(self, token) -> bool:
        if super().do_acquire(token):
            return True
        holder = self.redis.get(self.name)
        if holder is None or not owner_gone(_text(holder)):
            return False
        if self._takeover(keys=[self.name], args=[holder, token, int(self.timeout * 1000)]):
            self.taken_over_from = _text(holder)
            logger.info("lock %s taken over from a dead owner (%s)", self.name, self.taken_over_from)
            return True
        return False


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class HeldLock:
    """What `held` yields: the lock and whether it is still ours."""

    def __init__(self, lock: OwnedLock):
        self.lock = lock
        self.lost = False

    def beat(self) -> None:
        if not self.lost and not _renew(self.lock):
            self.lost = True

    def check(self) -> bool:
        """False when another owner has the lock now (ours lapsed while Redis was unreachable, say)."""
        return not self.lost and _renew(self.lock)


def _renew(lock: OwnedLock) -> bool:
    """Renew the TTL; a lock that lapsed with no taker (Redis was away past the TTL) is taken back."""
    try:
        return lock.reacquire()
    except LockError:
        return lock.acquire(blocking=False)


@contextmanager
def held(redis: Redis, name: str, *, ttl: float, wait: float):
    """Hold `name` for the with-block, renewed every TTL/4 by a heartbeat thread; yields a HeldLock, or None when
    another live owner kept it for `wait` seconds."""
    lock = OwnedLock(redis, name, ttl=ttl, wait=wait)
    if not lock.acquire():
        yield None
        return
    holder = HeldLock(lock)
    try:
        with beating(holder.beat, every=ttl / 4, name=name):
            yield holder
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("lock %s was lost before release", name)

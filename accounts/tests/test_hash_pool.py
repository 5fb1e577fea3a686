"""Password hashes run on the low-priority pool, so a login burst leaves the CPU to API reads."""

import os
import threading
import time

import argon2
import pytest
from django.contrib.auth.hashers import check_password, make_password

from accounts import hash_pool


def _thread_and_nice():
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_hashes_run_on_pool_threads_with_a_raised_nice_value(settings):
    settings.PASSWORD_HASH_THREADS, settings.PASSWORD_HASH_NICE = 2, 10
    name, nice = hash_pool.run_hash(_thread_and_nice)
    assert name.startswith("password-hash")
    assert nice >= 10
    # the caller's own priority is untouched
    assert _thread_and_nice()[1] < 10


def test_argon2_hash_and_verify_go_through_the_pool(settings, monkeypatch):
    settings.PASSWORD_HASH_THREADS = 2
    seen = []

    def recorder(name, original):
        def recording(*args, **kwargs):
            seen.append((name, threading.current_thread().name))
            return original(*args, **kwargs)
        return recording

    # Django's Argon2 hasher encodes with argon2.low_level.hash_secret and verifies with PasswordHasher.verify
    monkeypatch.setattr(argon2.low_level, "hash_secret", recorder("hash", argon2.low_level.hash_secret))
    monkeypatch.setattr(argon2.PasswordHasher, "verify", recorder("verify", argon2.PasswordHasher.verify))
    encoded = make_password("correct-horse-battery")
    assert encoded.startswith("argon2$argon2id$")
    assert check_password("correct-horse-battery", encoded)
    assert not check_password("wrong-horse", encoded)
    assert [m for m, _ in seen] == ["hash", "verify", "verify"]
    assert all(name.startswith("password-hash") for _, name in seen), seen


def test_zero_threads_hashes_on_the_callers_thread(settings):
    settings.PASSWORD_HASH_THREADS = 0
    assert hash_pool.run_hash(_thread_and_nice)[0] == threading.current_thread().name


def test_a_forked_child_builds_its_own_pool(settings):
    """gunicorn forks workers: the parent's pool threads do not exist in a child, which must not wait on them."""
    settings.PASSWORD_HASH_THREADS = 1
    hash_pool.run_hash(_thread_and_nice)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when a hash ran
        try:
            os._exit(0 if hash_pool.run_hash(_thread_and_nice)[0].startswith("password-hash") else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on its parent's hash pool")

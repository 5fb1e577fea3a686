"""Resource exhaustion in the REAL code-node sandbox: the node fails, clearly, the whole process tree is gone
afterwards and the worker (this test process) carries on. Also: a sandbox that cannot start, a non-root worker."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest
from django.conf import settings
from django.test import override_settings

from workflows import sandbox


@pytest.fixture(autouse=True)
def _short_timeout_then_a_healthy_worker():
    """Set up before a test's own `settings` (so checked after they are restored): the worker still works."""
    with override_settings(WORKFLOW_CODE_TIMEOUT_S=2.0):
        yield
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork
    assert sandbox.run_code(code="result = 6 * 7", inputs={}).result == 42


def _processes_named(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if token[:15] == (proc.info["name"] or "") or token in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _failed(run, fragment: str) -> None:
    assert run.status == "failed" and run.error["node_id"] == "code", run.error
    assert fragment in run.error["message"], run.error


def test_a_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(code_node):
    token = "fb" + uuid.uuid4().hex[:13]
    code = ("import ctypes, os\nctypes.CDLL(None).prctl(15, inputs['token'].encode(), 0, 0, 0)\n"
            "while True:\n    os.fork()")
    started = time.monotonic()
    run = code_node(code, token=token)
    _failed(run, "process limit")
    assert time.monotonic() - started < settings.WORKFLOW_CODE_TIMEOUT_S + 5
    assert _processes_named(token) == []


def test_a_fork_bomb_that_ignores_errors_is_killed_at_the_wall_clock(code_node):
    token = "fb" + uuid.uuid4().hex[:13]
    code = ("import ctypes, os, time\nctypes.CDLL(None).prctl(15, inputs['token'].encode(), 0, 0, 0)\n"
            "while True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)")
    started = time.monotonic()
    run = code_node(code, token=token)
    _failed(run, "longer than 2s")
    assert time.monotonic() - started < settings.WORKFLOW_CODE_TIMEOUT_S + 5
    assert _processes_named(token) == []


@pytest.mark.parametrize(("code", "message"), [
    ("x = bytearray(10 ** 10)", "memory limit"),
    ("x = []\nwhile True:\n    x.append(bytearray(10 ** 6))", "memory limit"),
    ("import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'bytearray(10 ** 10)'], check=True)",
     "CalledProcessError"),
    ("for i in range(10 ** 4):\n    open(f'/tmp/f{i}', 'wb').write(bytes(10 ** 6))", "No space left on device"),
    ("for i in range(10 ** 4):\n    open(f'/dev/shm/f{i}', 'wb').write(bytes(10 ** 6))", "No space left on device"),
    ("f = open('/tmp/big', 'wb')\nfor i in range(100):\n    f.write(bytes(10 ** 6))\n    f.flush()", "File too large"),
    ("files = [open('/tmp/f', 'w') for _ in range(10 ** 4)]", "Too many open files"),
])
def test_memory_disk_and_file_exhaustion_fail_the_node(code_node, settings, code, message):
    settings.WORKFLOW_CODE_TIMEOUT_S = 15.0  # the limit under test is not time, even on a loaded machine
    _failed(code_node(code), message)


def test_a_busy_loop_is_killed_at_the_wall_clock(code_node):
    started = time.monotonic()
    _failed(code_node("while True:\n    pass"), "longer than 2s")
    assert time.monotonic() - started < settings.WORKFLOW_CODE_TIMEOUT_S + 5


def test_the_wall_clock_kills_the_whole_tree_which_runs_as_the_sandbox_uid(code_node, settings):
    settings.WORKFLOW_CODE_TIMEOUT_S = 6.0  # time for the sleeper to start and be seen, even on a loaded machine
    token = uuid.uuid4().hex
    code = ("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', "
            "inputs['token']])\nimport time\ntime.sleep(300)")
    uids: set[int] = set()

    def watch():
        deadline = time.monotonic() + settings.WORKFLOW_CODE_TIMEOUT_S
        while not uids and time.monotonic() < deadline:
            for proc in _processes_named(token):
                with contextlib.suppress(psutil.Error):
                    uids.add(proc.uids().real)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = code_node(code, token=token)
    watcher.join()
    _failed(run, "longer than 6s")
    expected = settings.SANDBOX_UID if os.geteuid() == 0 else os.getuid()
    assert uids == {expected}  # the HOST uid, not only the one inside the namespace
    assert _processes_named(token) == []


def test_output_floods_are_cut_off(code_node):
    _failed(code_node("import os\nwhile True:\n    os.write(1, b'x' * 65536)"), "output exceeds")


def _host_marker(tmp_path) -> str:
    return str(tmp_path / f"ran-{uuid.uuid4().hex}")


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("SANDBOX_BWRAP", "/nonexistent/bwrap", "is not installed"),
    ("SANDBOX_PYTHON", "/nonexistent/bin/python3", "could not start, so the code did not run"),
    ("SANDBOX_PYTHON", "{base}/bin/python3", "would expose the project or its data"),
    ("SANDBOX_PYTHON", "{data}/python/bin/python3", "would expose the project or its data"),
    ("SANDBOX_PYTHON", "/python3", "would expose the project or its data"),
])
def test_a_sandbox_that_cannot_start_fails_the_node_and_runs_nothing(code_node, settings, tmp_path, setting,
                                                                      value, message):
    marker = _host_marker(tmp_path)
    setattr(settings, setting, value.format(base=settings.BASE_DIR, data=settings.DATA_DIR))
    run = code_node("open(inputs['marker'], 'w').write('ran unsandboxed')", marker=marker)
    _failed(run, message)
    assert not os.path.exists(marker)
    open(marker, "w").close()  # positive control: unsandboxed, this path is writable


_BLOCKED_USERNS = "read _ && exec sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"' sh \"$@\""
_PROBE = """
import sys
from workflows.sandbox import SandboxError, run_code
try:
    run_code(code="open(inputs['marker'], 'w')", inputs={"marker": sys.argv[1]})
    print("RAN")
except SandboxError as exc:
    print("ERROR", exc.message)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="writes another namespace's uid map: needs root, as in CI")
def test_blocked_user_namespaces_fail_the_node_with_a_clear_error(tmp_path):
    """A worker where user namespaces are blocked (as under Docker's default seccomp profile)."""
    marker = _host_marker(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(settings.BASE_DIR), "DJANGO_SETTINGS_MODULE": "layra.settings"}
    proc = subprocess.Popen(["unshare", "--user", "sh", "-c", _BLOCKED_USERNS, "sh", sys.executable, "-c", _PROBE,
                             marker], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    mine = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{proc.pid}/ns/user") == mine and time.monotonic() < deadline:
        time.sleep(0.01)
    for name in ("uid_map", "gid_map"):  # root of the new namespace is root here; uids up to 65535 exist
        with open(f"/proc/{proc.pid}/{name}", "w") as f:
            f.write("0 0 65536\n")
    out = proc.communicate(b"\n", timeout=120)[0].decode()
    assert "ERROR The code sandbox could not start, so the code did not run" in out, out
    assert "Creating new namespace failed" in out and not os.path.exists(marker)


_UNPRIVILEGED = """
import json, subprocess, sys
sys.path.insert(0, sys.argv[1])
from workflows.sandbox_bwrap import Limits, command, interpreter
argv = command(bwrap="bwrap", python=interpreter(configured=""), uid=65534, gid=65534, private=[sys.argv[1]],
               seccomp_fd=None,
               limits=Limits(cpu_s=3, memory_mb=256, processes=8, file_mb=1, open_files=32, tmpfs_mb=1))
code = "import os\\nresult = [os.getuid(), sorted(os.listdir('/')), os.path.exists(inputs['settings'])]"
payload = json.dumps({"code": code, "inputs": {"settings": sys.argv[2]}}).encode()
proc = subprocess.run(argv, input=payload, capture_output=True, timeout=20)
print(json.dumps({"argv0": argv[0], "out": proc.stdout.decode(), "err": proc.stderr.decode()}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another uid to play the non-root worker")
def test_a_non_root_worker_runs_the_same_sandbox_without_switching_uid():
    """The compose worker runs as an unprivileged user: bwrap then starts directly, with no setpriv."""
    settings_file = str(settings.BASE_DIR / "layra" / "settings" / "core.py")
    proc = subprocess.run(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "/usr/bin/python3", "-I",
                           "-c", _UNPRIVILEGED, str(settings.BASE_DIR), settings_file], capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["argv0"].endswith("/bwrap"), report
    result = json.loads(report["out"].rsplit("__SANDBOX_RESULT__", 1)[1])
    assert result["error"] is None and result["result"][0] == 65534, report
    assert set(result["result"][1]) <= {"bin", "dev", "lib", "lib64", "proc", "sbin", "tmp", "usr"}
    assert result["result"][2] is False and os.path.exists(settings_file)


class _Interrupted(Exception):
    pass


def test_an_exception_in_the_worker_mid_run_kills_the_tree():
    """Celery's soft time limit raises inside the task, wherever it is: the sandbox must not outlive it."""
    token = uuid.uuid4().hex
    code = ("import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)', "
            "inputs['token']])\ntime.sleep(30)")  # without the kill, run_code would wait on this, not time out

    def interrupt(_signum, _frame):
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    started = time.monotonic()
    try:
        with pytest.raises(_Interrupted):
            sandbox.run_code(code=code, inputs={"token": token}, timeout_s=2.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 1.9  # interrupted, not timed out
    deadline = time.monotonic() + 5
    while _processes_named(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_named(token) == []

"""Run a code node's Python in a bubblewrap sandbox, one process tree per execution (see SANDBOX.md).

There is no fallback: when the sandbox cannot start, the node fails and the code does not run.
"""

import json
import math
import os
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from django.conf import settings

from .sandbox_boot import MARKER, READY
from .sandbox_bwrap import Limits, SandboxUnavailable, command, interpreter
from .sandbox_seccomp import program as seccomp_program

_STDERR_KEEP = 4096


class SandboxError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass
class SandboxResult:
    result: object
    stdout: str


@dataclass
class _Outcome:
    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool = False
    too_big: bool = False


def _limits(*, timeout_s: float) -> Limits:
    return Limits(cpu_s=math.ceil(timeout_s) + 1, memory_mb=settings.WORKFLOW_CODE_MEMORY_MB,
                  processes=settings.WORKFLOW_CODE_MAX_PROCESSES, file_mb=settings.WORKFLOW_CODE_MAX_FILE_MB,
                  open_files=settings.WORKFLOW_CODE_MAX_OPEN_FILES, tmpfs_mb=settings.WORKFLOW_CODE_TMPFS_MB)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL bwrap's process group; --die-with-parent and the pid namespace take everything inside with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _collect(proc: subprocess.Popen, *, timeout_s: float, max_output: int) -> _Outcome:
    """Read stdout (capped) and stderr (its tail) until both close, killing the tree at the wall-clock deadline."""
    deadline = time.monotonic() + timeout_s
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                return _Outcome(bytes(out), bytes(err), proc.wait(), timed_out=True)
            for key, _ in sel.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is err and len(err) > _STDERR_KEEP:
                    del err[:-_STDERR_KEEP]
                if len(out) > max_output + len(READY) + 1:
                    _kill_group(proc)
                    return _Outcome(bytes(out), bytes(err), proc.wait(), too_big=True)
    try:
        return _Outcome(bytes(out), bytes(err), proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return _Outcome(bytes(out), bytes(err), proc.wait(), timed_out=True)


def _start(argv: list[str], *, payload: bytes, pass_fds: tuple[int, ...]) -> subprocess.Popen:
    with tempfile.TemporaryFile() as stdin:
        stdin.write(payload)
        stdin.seek(0)
        try:
            return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/",
                                    start_new_session=True, close_fds=True, pass_fds=pass_fds)
        except OSError as exc:
            raise SandboxError(f"The code sandbox could not start: {exc.strerror}.") from None


def _interpret(outcome: _Outcome, *, timeout_s: float, max_output: int) -> SandboxResult:
    stderr = outcome.stderr.decode(errors="replace").strip()
    if outcome.too_big:
        raise SandboxError(f"Code output exceeds {max_output} bytes.")
    if outcome.timed_out:
        raise SandboxError(f"Code ran longer than {timeout_s:g}s and was stopped.")
    ready = READY.encode() + b"\n"
    if not outcome.stdout.startswith(ready):
        reason = stderr.splitlines()[-1] if stderr else f"exit status {outcome.returncode}"
        raise SandboxError(f"The code sandbox could not start, so the code did not run: {reason[:300]}")
    stdout = outcome.stdout[len(ready):]
    marker = b"\n" + MARKER.encode()
    if marker not in stdout:
        if outcome.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            raise SandboxError("Code exceeded its CPU time limit and was stopped.")
        if "MemoryError" in stderr:
            raise SandboxError("Code exceeded its memory limit.")
        raise SandboxError(f"Code crashed (exit {outcome.returncode}): {stderr[-300:]}")
    data = json.loads(stdout.rsplit(marker, 1)[1])
    if data["error"]:
        if data["error"].startswith("MemoryError"):
            raise SandboxError("Code exceeded its memory limit.")
        if data["error"].startswith("BlockingIOError: [Errno 11]"):
            raise SandboxError(f"Code hit its process limit and was stopped: {data['error']}")
        raise SandboxError(f"Code raised {data['error']}")
    return SandboxResult(result=data["result"], stdout=data["stdout"])


def run_code(*, code: str, inputs: dict, timeout_s: float | None = None) -> SandboxResult:
    """Run `code` with `inputs` in a fresh sandbox; return its JSON result or raise SandboxError (a clear message)."""
    timeout_s = min(timeout_s or settings.WORKFLOW_CODE_TIMEOUT_S, settings.WORKFLOW_CODE_TIMEOUT_S)
    max_output = settings.WORKFLOW_CODE_MAX_OUTPUT_BYTES
    bpf = seccomp_program()
    with tempfile.TemporaryFile() as seccomp:
        seccomp.write(bpf or b"")
        seccomp.flush()
        seccomp.seek(0)
        fds = (seccomp.fileno(),) if bpf else ()
        try:
            argv = command(bwrap=settings.SANDBOX_BWRAP, python=interpreter(configured=settings.SANDBOX_PYTHON),
                           uid=settings.SANDBOX_UID, gid=settings.SANDBOX_GID, limits=_limits(timeout_s=timeout_s),
                           private=[str(settings.BASE_DIR), str(settings.DATA_DIR), str(settings.MEDIA_ROOT)],
                           seccomp_fd=fds[0] if fds else None)
        except SandboxUnavailable as exc:
            raise SandboxError(exc.message) from None
        payload = json.dumps({"code": code, "inputs": inputs}, default=str).encode()
        proc = _start(argv, payload=payload, pass_fds=fds)
    with proc:
        try:
            outcome = _collect(proc, timeout_s=timeout_s, max_output=max_output)
        except BaseException:  # e.g. Celery's soft time limit: never leave the tree running (or wait on it)
            _kill_group(proc)
            raise
    return _interpret(outcome, timeout_s=timeout_s, max_output=max_output)

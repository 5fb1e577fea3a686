"""Run user Python in a locked-down subprocess (see SANDBOX.md for what this does and does not stop)."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache

from django.conf import settings

# The child's bootstrap: installs audit hooks that refuse process creation and sockets, then runs the
# user's code with `inputs` bound; `main(inputs)` is called when defined, else the `result` global is used.
_RUNNER = r'''
import sys, json, io
_BLOCKED = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
            "socket.connect", "socket.bind", "socket.__new__", "socket.getaddrinfo", "socket.sendto",
            "os.kill", "os.killpg", "pty.spawn", "ctypes.dlopen", "ctypes.cdata", "os.putenv", "os.setuid",
            "sys.setrecursionlimit", "os.chdir", "_posixsubprocess.fork_exec", "os.set_inheritable")
def _hook(event, args):
    for b in _BLOCKED:
        if event == b or event.startswith(b + "."):
            raise PermissionError("sandbox: operation not permitted: " + event)
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = args[0].decode() if isinstance(args[0], bytes) else args[0]
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        if any(c in mode for c in "wax+") and (path.startswith("/") and not path.startswith(_CWD)):
            raise PermissionError("sandbox: writing outside the work directory is not permitted")
import os
_CWD = os.getcwd()
_payload = json.loads(sys.stdin.read())
_real_stdout = sys.stdout
_buf = io.StringIO()
sys.addaudithook(_hook)
del os
_g = {"__name__": "__sandbox__", "inputs": _payload["inputs"]}
_err = None
try:
    sys.stdout = _buf
    exec(compile(_payload["code"], "<node>", "exec"), _g)
    _result = _g["main"](_payload["inputs"]) if callable(_g.get("main")) else _g.get("result")
except BaseException as e:
    _result = None
    _err = type(e).__name__ + ": " + str(e)[:1000]
finally:
    sys.stdout = _real_stdout
try:
    _out = json.dumps({"result": _result, "stdout": _buf.getvalue()[-10000:], "error": _err})
except (TypeError, ValueError) as e:
    _out = json.dumps({"result": None, "stdout": "", "error": "Result is not JSON serialisable: " + str(e)})
_real_stdout.write("\n__SANDBOX_RESULT__" + _out)
_real_stdout.flush()
'''


class SandboxError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass
class SandboxResult:
    result: object
    stdout: str


@cache
def network_isolation_available() -> bool:
    """`unshare --net` needs CAP_SYS_ADMIN (root here); probe once."""
    exe = shutil.which("unshare")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "--net", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _limits(cpu_s: int, memory_mb: int, fsize_mb: int):
    def _apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # Root ignores RLIMIT_NPROC; the audit hook in the child refuses fork/exec/spawn as well.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    return _apply


def run_code(*, code: str, inputs: dict, timeout_s: float | None = None) -> SandboxResult:
    """Run `code` with `inputs`; return its JSON result or raise SandboxError with a clear message."""
    timeout_s = timeout_s or settings.WORKFLOW_CODE_TIMEOUT_S
    max_output = settings.WORKFLOW_CODE_MAX_OUTPUT_BYTES
    payload = json.dumps({"code": code, "inputs": inputs}, default=str)
    workdir = tempfile.mkdtemp(prefix="wf-sandbox-")
    os.chmod(workdir, 0o700)
    cmd = [sys.executable, "-I", "-S", "-B", "-c", _RUNNER]
    if network_isolation_available():
        cmd = [shutil.which("unshare"), "--net", *cmd]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=env,
            preexec_fn=_limits(int(timeout_s) + 1, settings.WORKFLOW_CODE_MEMORY_MB, 10), close_fds=True,
        )
        try:
            stdout, stderr = proc.communicate(payload.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise SandboxError(f"Code ran longer than {timeout_s:g}s and was stopped.") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(stdout) > max_output:
        raise SandboxError(f"Code output exceeds {max_output} bytes.")
    marker = b"\n__SANDBOX_RESULT__"
    if marker not in stdout:
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            raise SandboxError("Code exceeded its CPU time limit and was stopped.")
        tail = stderr.decode(errors="replace")[-500:]
        if "MemoryError" in tail:
            raise SandboxError("Code exceeded its memory limit.")
        raise SandboxError(f"Code crashed (exit {proc.returncode}): {tail.strip()[-300:]}")
    data = json.loads(stdout.rsplit(marker, 1)[1])
    if data["error"]:
        if data["error"].startswith("MemoryError"):
            raise SandboxError("Code exceeded its memory limit.")
        raise SandboxError(f"Code raised {data['error']}")
    return SandboxResult(result=data["result"], stdout=data["stdout"])

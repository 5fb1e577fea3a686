"""The command line that starts one code-node execution under bubblewrap (see SANDBOX.md for the boundary)."""

import glob
import json
import os
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WORKDIR = "/tmp"
_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
_TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class SandboxUnavailable(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    cpu_s: int
    memory_mb: int
    processes: int
    file_mb: int
    open_files: int
    tmpfs_mb: int

    def rlimits(self) -> dict[str, int]:
        """Set by the bootstrap inside the new user namespace, where RLIMIT_NPROC counts this sandbox only."""
        return {"RLIMIT_CPU": self.cpu_s, "RLIMIT_AS": self.memory_mb << 20, "RLIMIT_NPROC": self.processes,
                "RLIMIT_FSIZE": self.file_mb << 20, "RLIMIT_NOFILE": self.open_files, "RLIMIT_CORE": 0}


@cache
def _boot_source() -> str:
    return (Path(__file__).with_name("sandbox_boot.py")).read_text()


def interpreter(*, configured: str) -> str:
    """The Python run inside: the setting, else the system's (stdlib only), else the worker's own base interpreter."""
    if configured:
        return configured
    for candidate in _PYTHONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _filesystem(*, python: str, private: list[str]) -> list[str]:
    """/usr read-only, the merged-/usr links, the interpreter's prefix when outside /usr; site-packages hidden."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in _TOP_LINKS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(python)))
    roots = {"/usr", "/usr/local"}
    if not (prefix + "/").startswith("/usr/"):
        if prefix == "/" or any(_overlaps(prefix, path) for path in private):
            raise SandboxUnavailable(f"Code nodes cannot run on this worker: the sandbox Python's prefix {prefix} "
                                     "would expose the project or its data; set SANDBOX_PYTHON to a system Python.")
        args += ["--ro-bind", prefix, prefix]
        roots.add(prefix)
    hidden = {path for root in roots for path in glob.glob(f"{root}/lib/python3*/*-packages")}
    # A project deployed under /usr (say /usr/src/app) or inside the prefix is covered by an empty tmpfs too.
    hidden |= {real for real in map(os.path.realpath, private)
               if os.path.isdir(real) and any(real.startswith(root + "/") for root in roots)}
    for path in sorted(hidden):
        if not any(path.startswith(other + "/") for other in hidden):  # covered already by its parent's tmpfs
            args += ["--tmpfs", path, "--remount-ro", path]
    return args


def command(*, bwrap: str, python: str, uid: int, gid: int, limits: Limits, private: list[str],
            seccomp_fd: int | None) -> list[str]:
    """argv for one execution: setpriv to the sandbox uid when we are root, then bwrap, then the bootstrap.

    `private`: host paths (the project, its data) that must never be mounted, whatever the interpreter's prefix.
    `seccomp_fd`: an fd the child inherits holding the BPF filter (sandbox_seccomp), or None for no filter.
    """
    bwrap_path = shutil.which(bwrap)
    if bwrap_path is None:
        raise SandboxUnavailable(
            f"Code nodes cannot run on this worker: the sandbox program '{bwrap}' (bubblewrap) is not installed.")
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root ignores RLIMIT_NPROC and owns every file: become the dedicated unprivileged uid first.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable("Code nodes cannot run on this worker: 'setpriv' (util-linux) is not installed.")
        prefix = [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
                  "--inh-caps=-all", "--bounding-set=-all"]
    tmpfs = str(limits.tmpfs_mb << 20)
    return [
        *prefix, bwrap_path,
        "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--uid", str(uid), "--gid", str(gid), "--hostname", "sandbox", "--cap-drop", "ALL",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", WORKDIR,
        "--setenv", "TMPDIR", WORKDIR, "--setenv", "LANG", "C.UTF-8",
        *_filesystem(python=python, private=private),
        "--proc", "/proc", "--dev", "/dev", "--size", tmpfs, "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
        "--size", tmpfs, "--tmpfs", WORKDIR, "--chdir", WORKDIR, "--remount-ro", "/",
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        python, "-I", "-S", "-B", "-c", _boot_source(), json.dumps(limits.rlimits()),
    ]

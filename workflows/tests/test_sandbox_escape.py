"""Escape attempts against the REAL code-node sandbox (bubblewrap), each run as a code node through the engine.

Every attempt has full Python: there is no in-process guard to switch off, so each test shows that the kernel
boundary holds (no host file, no network, no host namespace) and that a positive control on the host side
would have seen the thing the code could not.
"""

import errno
import json
import os
import platform
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from django.conf import settings

from workflows import sandbox

ATTEMPT = '''
def attempt(fn, *args):
    try:
        return "ok: " + repr(fn(*args))[:200]
    except BaseException as exc:
        return "error: " + type(exc).__name__ + ": " + str(exc)[:200]
'''
SANDBOX_TOP = {"bin", "dev", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}


def _settings_path() -> str:
    return str(settings.BASE_DIR / "layra" / "settings" / "core.py")


@pytest.fixture(autouse=True)
def _worker_stays_healthy():
    yield
    assert sandbox.run_code(code="result = 6 * 7", inputs={}).result == 42


@pytest.mark.parametrize("template", [
    "/etc/passwd", "/etc/os-release", "{base}/layra/settings/core.py", "{base}/manage.py", "/proc/{pid}/environ",
    "/proc/{pid}/cwd/layra/settings/core.py", "/proc/{pid}/root/etc/passwd",
])
def test_host_files_cannot_be_read(code_node, template):
    path = template.format(base=settings.BASE_DIR, pid=os.getpid())
    assert Path(path).read_bytes()  # positive control: the worker itself can read it
    run = code_node("result = open(inputs['path']).read()", path=path)
    assert run.status == "failed" and run.error["node_id"] == "code"
    assert run.error["message"].startswith("Code raised FileNotFoundError"), run.error


def test_project_settings_are_not_reachable_through_proc(code_node):
    code = ATTEMPT + '''
import os
import platform
pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
paths = [f"/proc/{p}/cwd/layra/settings/core.py" for p in pids + [str(os.getppid()), inputs["pid"]]]
paths += [f"/proc/{p}/root" + inputs["settings"] for p in pids] + [inputs["settings"]]
result = {"pids": pids, "reads": {p: attempt(lambda p=p: open(p).read()) for p in paths}}
'''
    run = code_node(code, pid=str(os.getpid()), settings=_settings_path())
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    assert len(found["pids"]) <= 4 and str(os.getpid()) not in found["pids"]
    assert found["reads"] and all(v.startswith("error: FileNotFoundError") for v in found["reads"].values()), found
    assert "SECRET_KEY" not in json.dumps(found)


def test_other_tenants_uploads_and_data_files_are_invisible(code_node, other_user):
    token = uuid.uuid4().hex
    upload = Path(settings.MEDIA_ROOT) / other_user.username / "originals" / f"{token}.pdf"
    database = Path(settings.DATA_DIR) / f"{token}.sqlite3"
    for path in (upload, database):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"secret {token}")
    code = ATTEMPT + '''
import os
import platform
files = []
for root, dirs, names in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/usr", "/dev")]
    files += [os.path.join(root, n) for n in names]
result = {"reads": {p: attempt(lambda p=p: open(p).read()) for p in inputs["paths"]}, "files": files,
          "top": sorted(os.listdir("/"))}
'''
    try:
        run = code_node(code, paths=[str(upload), str(database), str(upload.parent), str(settings.DATA_DIR)])
    finally:
        upload.unlink()
        database.unlink()
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    assert all(v.startswith("error: FileNotFoundError") for v in found["reads"].values()), found
    assert found["files"] == [] and set(found["top"]) <= SANDBOX_TOP, found
    assert f"secret {token}" not in json.dumps(found)


WRITERS = {
    "open": "open(target, 'w').write('x')",
    "os.open": "os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))",
    "pathlib": "pathlib.Path(target).write_text('x')",
    "shutil": "shutil.copyfile('/tmp/source', target)",
    "os.rename": "os.rename('/tmp/source', target)",
    "os.mkdir": "os.mkdir(target)",
}


@pytest.mark.parametrize("api", sorted(WRITERS))
def test_writing_outside_the_work_dir_fails_by_every_api(code_node, tmp_path, api):
    name = f"pwned-{uuid.uuid4().hex}"
    targets = [str(settings.BASE_DIR / name), str(tmp_path / name), str(Path(settings.MEDIA_ROOT) / name),
               f"/usr/{name}", f"/{name}", f"/dev/{name}", f"/proc/{name}", f"/usr/lib/{name}"]
    code = ATTEMPT + f'''
import os, pathlib, shutil
def write(target):
    open('/tmp/source', 'w').write('x')
    {WRITERS[api]}
result = {{target: attempt(write, target) for target in inputs["targets"]}}
'''
    run = code_node(code, targets=targets)
    assert run.status == "succeeded", run.error
    outcomes = run.variables["code"]
    assert len(outcomes) == len(targets), outcomes
    assert all(v.startswith(("error: OSError", "error: PermissionError", "error: FileNotFoundError"))
               for v in outcomes.values()), outcomes
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    for target in targets[:3]:
        assert Path(target).parent.is_dir() and not Path(target).exists()  # the host dir is there; no file in it


def test_a_write_outside_the_work_dir_fails_the_node(code_node):
    target = str(settings.BASE_DIR / f"pwned-{uuid.uuid4().hex}")
    run = code_node("import os\nos.open(inputs['t'], os.O_WRONLY | os.O_CREAT)", t=target)
    assert run.status == "failed" and "FileNotFoundError" in run.error["message"], run.error
    assert not Path(target).exists()


def test_the_work_dir_is_private_and_fresh_for_each_execution(code_node):
    name = f"scratch-{uuid.uuid4().hex}"
    first = code_node("import os\nopen('/tmp/' + inputs['n'], 'w').write('x')\nresult = os.listdir('/tmp')", n=name)
    assert first.status == "succeeded" and first.variables["code"] == [name]
    assert not Path("/tmp", name).exists()
    second = code_node("result = open('/tmp/' + inputs['n']).read()", n=name)
    assert second.status == "failed" and "FileNotFoundError" in second.error["message"]


def test_there_is_no_guard_to_disable_and_full_python_stays_inside(code_node):
    code = ATTEMPT + '''
import ctypes, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    return [getattr(libc, name)(*args), ctypes.get_errno()]
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
result = {
    "calls": {
        "setuid0": call("setuid", 0), "setgid0": call("setgid", 0),
        "chroot": call("chroot", b"/"), "mount": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
        "unshare_user": call("unshare", 0x10000000), "unshare_mnt": call("unshare", 0x00020000),
        "unshare_net": call("unshare", 0x40000000), "open_settings": call("open", inputs["settings"].encode(), 0),
    },
    "raise_nproc": attempt(resource.setrlimit, resource.RLIMIT_NPROC, (resource.RLIM_INFINITY,) * 2),
    "uid": os.getuid(), "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
}
'''
    run = code_node(code, settings=_settings_path())
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    assert all(rc == -1 and errno != 0 for rc, errno in found["calls"].values()), found
    assert found["raise_nproc"].startswith("error: ValueError"), found
    assert found["uid"] == settings.SANDBOX_UID and found["cap_eff"] == "0000000000000000"
    assert found["no_new_privs"] == "1"


def test_wiping_the_bootstrap_state_only_breaks_the_node(code_node):
    """The old guard lived in the same interpreter and could be switched off; the bootstrap holds nothing to win."""
    target = str(settings.BASE_DIR / f"pwned-{uuid.uuid4().hex}")
    code = "import sys\nsys.modules['__main__'].__dict__.clear()\nopen(inputs['t'], 'w').write('x')"
    run = code_node(code, t=target)
    assert run.status == "failed" and run.error["message"].startswith("Code crashed"), run.error
    assert not Path(target).exists()


def test_fork_exec_and_subprocess_work_but_see_only_the_sandbox(code_node):
    code = '''
import os, subprocess
ident = subprocess.run(["/usr/bin/id"], capture_output=True, text=True).stdout
top = subprocess.run(["/bin/ls", "-A", "/"], capture_output=True, text=True).stdout.split()
cat = subprocess.run(["/bin/cat", inputs["settings"], "/etc/passwd"], capture_output=True, text=True)
pid = os.fork()
if pid == 0:
    os._exit(1 if os.path.exists(inputs["settings"]) else 0)
result = {"id": ident, "top": top, "cat_rc": cat.returncode, "cat_out": cat.stdout,
          "child": os.waitpid(pid, 0)[1], "pids": [p for p in os.listdir("/proc") if p.isdigit()]}
'''
    run = code_node(code, settings=_settings_path())
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    assert f"uid={settings.SANDBOX_UID}" in found["id"] and set(found["top"]) <= SANDBOX_TOP, found
    assert found["cat_rc"] != 0 and found["cat_out"] == "" and found["child"] == 0
    assert len(found["pids"]) <= 4


def test_exec_into_a_host_binary_reading_host_files_fails_the_node(code_node):
    run = code_node("import os\nos.execv('/bin/cat', ['cat', inputs['settings']])", settings=_settings_path())
    assert run.status == "failed" and "No such file or directory" in run.error["message"], run.error


def _redis_port() -> int:
    return urlparse(settings.REDIS_URL).port or 6379


def _host_addresses() -> list[str]:
    return [a.address for name, addrs in psutil.net_if_addrs().items() if name != "lo"
            for a in addrs if a.family == socket.AF_INET]


def test_sockets_reach_nothing_not_loopback_not_redis_not_outside(code_node):
    with socket.create_connection(("127.0.0.1", _redis_port()), timeout=5) as conn:  # positive control
        conn.sendall(b"PING\r\n")
        assert conn.recv(16).startswith(b"+PONG")
    targets = [["127.0.0.1", _redis_port()], ["127.0.0.1", 6379], ["127.0.0.1", 3306], ["::1", _redis_port()],
               ["1.1.1.1", 53], ["169.254.169.254", 80]] + [[a, _redis_port()] for a in _host_addresses()]
    code = ATTEMPT + '''
import socket
def connect(host, port):
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(b"PING\\r\\n")
        return conn.recv(16)
def unix(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
result = {
    "tcp": {f"{h}:{p}": attempt(connect, h, p) for h, p in inputs["targets"]},
    "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("1.1.1.1", 53))),
    "dns": attempt(socket.getaddrinfo, "example.com", 443),
    "unix": {p: attempt(unix, p) for p in ["/run/mysqld/mysqld.sock", "/var/run/redis/redis-server.sock",
                                          "/var/run/docker.sock", "/tmp/.X11-unix/X0"]},
    "interfaces": socket.if_nameindex(),
    "unix_table": open("/proc/net/unix").read().splitlines()[1:],
}
'''
    run = code_node(code, targets=targets)
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    outcomes = [*found["tcp"].values(), found["udp"], found["dns"], *found["unix"].values()]
    assert len(found["tcp"]) == len(targets) and all(v.startswith("error: ") for v in outcomes), found
    assert found["interfaces"] == [[1, "lo"]] and found["unix_table"] == []


def test_a_connection_to_redis_fails_the_node(code_node):
    run = code_node("import socket\nsocket.create_connection(('127.0.0.1', inputs['port']), timeout=2)",
                    port=_redis_port())
    assert run.status == "failed" and "ConnectionRefusedError" in run.error["message"], run.error


def test_host_namespaces_are_out_of_reach(code_node):
    kinds = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    code = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
kinds = inputs["kinds"]
tries = {}
for pid in ["1", "self", inputs["host_pid"]]:
    for kind in kinds:
        try:
            fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
        except OSError as exc:
            tries[f"{pid}/{kind}"] = ["open", exc.strerror]
            continue
        tries[f"{pid}/{kind}"] = [libc.setns(fd, 0), ctypes.get_errno()]
        os.close(fd)
result = {"ns": {k: os.readlink(f"/proc/self/ns/{k}") for k in kinds},
          "pid1": {k: os.readlink(f"/proc/1/ns/{k}") for k in kinds}, "setns": tries}
'''
    run = code_node(code, kinds=kinds, host_pid=str(os.getpid()))
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    for kind in kinds:
        host = os.readlink(f"/proc/self/ns/{kind}")
        assert found["ns"][kind] != host and found["pid1"][kind] != host, kind
    assert all(rc == "open" or rc == -1 for rc, _ in found["setns"].values()), found["setns"]
    assert all(found["setns"][f"{os.getpid()}/{k}"][0] == "open" for k in kinds)  # host pids do not exist inside


def test_code_sees_only_a_minimal_environment(code_node):
    run = code_node("import os\nresult = dict(os.environ)")
    assert run.status == "succeeded", run.error
    assert run.variables["code"] == {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
                                     "PWD": "/tmp"}


def test_a_project_deployed_under_usr_is_hidden_all_the_same(code_node, settings):
    """/usr is mounted for the interpreter; data under it (as with a checkout in /usr/src/app) is covered."""
    deployed = "/usr/share/doc"
    assert os.listdir(deployed)  # positive control: the host has files there
    settings.MEDIA_ROOT = deployed
    run = code_node("import os\nresult = [os.listdir(inputs['d']), os.listdir('/usr/share')]", d=deployed)
    assert run.status == "succeeded", run.error
    assert run.variables["code"][0] == [] and "doc" in run.variables["code"][1]


# x86_64 numbers: a second source of truth for workflows/sandbox_seccomp.py, from the kernel's unistd_64.h.
_X86_64_REFUSED = {"keyctl": 250, "add_key": 248, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
                   "io_uring_setup": 425, "ptrace": 101, "process_vm_readv": 310, "init_module": 175,
                   "open_by_handle_at": 304, "fsopen": 430, "unshare": 272, "mount": 165}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the test's syscall numbers are x86_64's")
def test_the_usual_kernel_exploit_entry_points_are_refused_by_seccomp(code_node):
    code = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def call(nr):
    ctypes.set_errno(0)
    return [libc.syscall(nr, 0, 0, 0, 0, 0), ctypes.get_errno()]
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
result = {"calls": {name: call(nr) for name, nr in inputs["refused"].items()}, "x32": call(0x40000000 + 39),
          "getpid": call(39), "seccomp": status["Seccomp"].strip()}
'''
    run = code_node(code, refused=_X86_64_REFUSED)
    assert run.status == "succeeded", run.error
    found = run.variables["code"]
    assert found["seccomp"] == "2" and found["getpid"][0] > 0, found
    assert all(result == [-1, errno.EPERM] for result in found["calls"].values()), found
    assert found["x32"] == [-1, errno.EPERM], found

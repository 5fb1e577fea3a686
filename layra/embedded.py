"""Start the embedded servers the product needs on one machine (run command and tests).

Each is a child process on loopback: SecantusDB (MongoDB wire protocol), the Milvus Lite
gRPC server (so web and workers share one data dir), a private redis-server, moto's S3.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ServiceProcess:
    name: str
    port: int
    args: list[str]
    log_path: Path
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready: Callable[[], bool] | None = None  # beyond an open port (a server that listens before it serves)
    start_timeout: float = 60
    stop_timeout: float = 10

    def start(self, timeout: float | None = None) -> "ServiceProcess":
        return self.launch().wait_ready(timeout or self.start_timeout)

    def launch(self) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float | None = None) -> "ServiceProcess":
        timeout = timeout or self.start_timeout
        deadline = time.monotonic() + timeout
        while not (port_open(self.port) and (self.ready is None or self.ready())):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not open port {self.port} in {timeout}s; see {self.log_path}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self, timeout: float | None = None) -> "ServiceProcess":
        self.stop()
        return self.start(timeout)


def secantus(port: int, storage_path: str, log_dir: Path) -> ServiceProcess:
    args = [str(BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage_path,
            "--log-level", "WARNING", "--standalone"]
    return ServiceProcess("secantusdb", port, args, log_dir / "secantus.log")


def milvus_lite(port: int, data_dir: Path, log_dir: Path) -> ServiceProcess:
    args = [str(BIN / "milvus-lite"), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    return ServiceProcess("milvus-lite", port, args, log_dir / "milvus.log")


def milvus_standalone(port: int, data_dir: Path, log_dir: Path) -> ServiceProcess:
    """The `milvus` package's standalone 2.3 server (dense search, fast; no BM25) on private ports."""
    # By path, not `-m`: it needs nothing of the project, and a caller may run from another directory; -P keeps
    # layra/ off sys.path (layra/logging.py would shadow the standard library's).
    launcher = Path(__file__).with_name("milvus_standalone.py")
    args = [sys.executable, "-P", str(launcher), "--data", str(data_dir), "--port", str(port)]  # -P: layra/ not on path
    return ServiceProcess("milvus-standalone", port, args, log_dir / "milvus-standalone.log",
                          ready=lambda: milvus_answers(port), start_timeout=240, stop_timeout=30)


def milvus_answers(port: int, *, times: int = 3) -> bool:
    """The server answers several calls in a row: a 2.3 server that has just opened its port still changes its
    etcd leader and coordinator sessions for a moment, and a caller's first call then fails."""
    from pymilvus import MilvusClient

    try:
        client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2)
        for attempt in range(times):
            if attempt:
                time.sleep(0.5)
            client.list_collections()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - not serving yet
        return False


def redis_server(port: int, log_dir: Path) -> ServiceProcess:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(log_dir)]
    return ServiceProcess("redis", port, args, log_dir / "redis.log")


def moto_s3(port: int, log_dir: Path) -> ServiceProcess:
    args = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return ServiceProcess("moto-s3", port, args, log_dir / "moto.log")


def private_stack(run_dir: Path) -> tuple[dict[str, ServiceProcess], dict[str, str]]:
    """Start a private redis-server, SecantusDB (in memory), Milvus (standalone and Lite) and moto S3 on free loopback
    ports; return them and the environment that points the product at them (the test run, bench_api by hand).

    Nothing is shared with another run, so two of them (or a run beside `make run`) never see each other's data.
    """
    log_dir = run_dir / "logs"
    services = {
        "redis": redis_server(free_port(), log_dir),
        "mongo": secantus(free_port(), ":memory:", log_dir),
        # The default stack's engine (MILVUS_URI) and Milvus Lite, which speaks production's 2.5 API (BM25):
        # tests of the production path point MILVUS_URI at MILVUS_LITE_URI.
        "milvus": milvus_standalone(free_port(), run_dir / "milvus-standalone", log_dir),
        "milvus_lite": milvus_lite(free_port(), run_dir / "milvus", log_dir),
        "s3": moto_s3(free_port(), log_dir),
    }
    try:
        for service in services.values():  # all at once: the Milvus servers take seconds to come up
            service.launch()
        for service in services.values():
            service.wait_ready()
    except Exception:
        for service in services.values():
            service.stop()
        raise
    redis_url = f"redis://127.0.0.1:{services['redis'].port}"
    env = {
        "DATA_DIR": str(run_dir / "data"),
        "MONGODB_URI": f"mongodb://127.0.0.1:{services['mongo'].port}/layra?retryWrites=false",
        "MILVUS_URI": f"http://127.0.0.1:{services['milvus'].port}",
        "MILVUS_LITE_URI": f"http://127.0.0.1:{services['milvus_lite'].port}",
        "LEXICAL_SQLITE_PATH": str(run_dir / "data" / "lexical.sqlite3"),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": f"{redis_url}/15",
        "AWS_STORAGE_BUCKET_NAME": "layra-local",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{services['s3'].port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    return services, env


@contextmanager
def private_run(prefix: str, *, keep_on_failure: bool = False) -> Iterator[
        tuple[dict[str, ServiceProcess], Path, dict[str, str]]]:
    """A private stack in a new temporary directory for the with-block (the benchmarks run on one): yields its
    services, the directory and the environment for child processes (os.environ with the stack's settings). Stops
    the stack after and removes the directory, unless the block failed and `keep_on_failure` keeps its logs."""
    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    services: dict[str, ServiceProcess] = {}
    failed = True
    try:
        services, stack_env = private_stack(run_dir)
        yield services, run_dir, {**os.environ, **stack_env}
        failed = False
    finally:
        for service in services.values():
            service.stop()
        if failed and keep_on_failure:
            print(f"failed: logs kept in {run_dir / 'logs'} and {run_dir / 'data' / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def process_group_stop(process: subprocess.Popen | None, *, grace: float = 20) -> None:
    """SIGTERM a child started in its own session (its whole process group), SIGKILL it after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)

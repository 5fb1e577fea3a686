"""Run the standalone Milvus server of the `milvus` package (2.3, embedded etcd) on private ports.

`python -m layra.milvus_standalone --data DIR --port PORT` prepares the server and becomes it (exec): gRPC on
PORT until SIGTERM. The package's own launcher probes its other ports on 127.0.0.1 only (the server listens on
all addresses, so two servers collide) and leaves etcd on its fixed 2379/2380: here every port is chosen free
up front and etcd gets a config file of its own, so several servers (make run, a test run, a benchmark) run side
by side.
"""

import argparse
import json
import socket
from pathlib import Path

PORT_KEYS = ["etcd_port", "root_coord_port", "proxy_internal_port", "query_coord_port", "query_node_port",
             "index_coord_port", "index_node_port", "data_coord_port", "data_node_port"]


def free_port() -> int:
    """A port free on every address (IPv4 and IPv6), as the server binds them all."""
    with socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True) as sock:
        return sock.getsockname()[1]


ETCD_PORT_KEYS = ("etcd_port", "etcd_peer_port")


def ports_for(data: Path) -> dict[str, int]:
    """etcd's ports of the last start when they are free again (its data remembers its member's peer address);
    new free ports for every Milvus node, on every start. Written to ports.json.

    Never the nodes' last ports: a stopped server leaves its nodes' sessions in etcd until their lease expires, and
    a new node on the same address then answers calls meant for the old one ("node not match"), which kept a
    restarted server from ever becoming ready. On new ports the stale sessions only fail to connect, and expire."""
    saved = data / "ports.json"
    try:
        last = json.loads(saved.read_text())
    except (OSError, ValueError):
        last = {}
    ports = {key: free_port() for key in [*PORT_KEYS, "etcd_peer_port", "metrics_port"]}
    for key in ETCD_PORT_KEYS:
        if isinstance(last.get(key), int) and port_free(last[key]):
            ports[key] = last[key]
    saved.write_text(json.dumps(ports))
    return ports


def port_free(port: int) -> bool:
    try:
        with socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True):
            return True
    except OSError:
        return False


def etcd_config(path: Path, *, client_port: int, peer_port: int) -> Path:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    path.write_text(f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                    f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
                    f"initial-cluster: default={peer}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)

    import os

    from milvus import MilvusServer, _initialize_data_files

    ports = ports_for(data)
    os.environ["ETCD_CONFIG_PATH"] = str(etcd_config(data / "etcd.yaml", client_port=ports["etcd_port"],
                                                     peer_port=ports["etcd_peer_port"]))
    server = MilvusServer(wait_for_started=False)
    server.set_base_dir(str(data))
    server.config.set("proxy_port", args.port)
    for key in PORT_KEYS:
        server.config.set(key, ports[key])
    # A Strong read waits for the next time tick: 50 ms instead of 200 (search reads a KB written moments ago so).
    server.config.set("proxy.timeTickInterval", 50)
    # What MilvusServer.start() does, then exec: this process becomes the server, so a signal sent to it (stop,
    # SIGSTOP in the fault tests) reaches the server itself, and its own SIGTERM handling shuts it down cleanly.
    server.config.resolve()
    _initialize_data_files(server.config.base_data_dir)
    executable = server.get_milvus_executable_path()
    os.chdir(server.config.base_data_dir)
    # Only what the server needs: Milvus reads its settings from the environment too (LOG_LEVEL=WARNING, which the
    # product's processes use, is no Milvus level and made the server panic seconds after it started).
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "ETCD_CONFIG_PATH")
    env = {**{k: v for k, v in os.environ.items() if k in keep}, "DEPLOY_MODE": "STANDALONE",
           "METRICS_PORT": str(ports["metrics_port"]),
           "MILVUS_RUN_DIR": str(Path(server.config.base_data_dir) / "run"),
           "LD_LIBRARY_PATH": ":".join([str(Path(executable).parent), os.environ.get("LD_LIBRARY_PATH", "")])}
    os.execve(executable, [executable, "run", "standalone"], env)


if __name__ == "__main__":
    main()

"""bench_api runs end to end (short) against gunicorn on the test stores and prints one JSON report."""

import json
import runpy
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_api_short_run_reports_every_operation_without_errors(capsys):
    call_command("bench_api", "--clients", "5", "--seconds", "3", "--think-ms", "100", "--llm-latency-ms", "300",
                 "--login-every", "3", "--json")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = {"login", "list_kbs", "list_files", "chat"}
    if "search" not in report["skipped"]:
        expected.add("search")
    assert set(report["operations"]) == expected
    for op, figures in report["operations"].items():
        assert figures["count"] > 0, (op, report)
        assert figures["p50_ms"] is not None and figures["p95_ms"] >= figures["p50_ms"], op
        # the server's own time (Server-Timing) is read from every answer, and is within what the client saw
        assert 0 < figures["server_p50_ms"] <= figures["p50_ms"], (op, figures)
    assert report["errors"] == 0 and report["error_rate"] == 0, report["error_samples"]
    assert report["think_ms"] == 100 and report["login_every"] == 3
    assert report["req_per_s"] > 0
    assert report["llm_requests"] >= report["operations"]["chat"]["count"]
    # every answer waited for the model to start, as with a real one
    assert report["llm_latency_ms"] == 300 and report["operations"]["chat"]["p50_ms"] >= 300
    # gunicorn ran as deployed: the workers and threads of gunicorn.conf.py
    deployed = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))
    assert (report["workers"], report["threads"]) == (deployed["workers"], deployed["threads"])
    assert set(report["host_speed_hash_ms"]) == {"before", "after"}
    assert all(ms > 0 for ms in report["host_speed_hash_ms"].values())
    # where the time went: gunicorn's own CPU per request and the host's busy share
    assert report["web_cpu_ms_per_request"] > 0
    assert 0 < report["host_cpu_busy_pct"] <= 100


def test_bench_api_runs_a_chosen_subset_of_operations(capsys):
    call_command("bench_api", "--clients", "2", "--seconds", "2", "--think-ms", "50", "--operations",
                 "list_kbs,list_files", "--json")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["operations"]) == {"list_kbs", "list_files"}
    assert all(figures["count"] > 0 for figures in report["operations"].values())
    assert report["errors"] == 0 and report["llm_requests"] == 0
    assert report["targets"]["list_read_p95_met"] == (max(f["p95_ms"] for f in report["operations"].values())
                                                      <= report["targets"]["list_read_p95_ms"])


def test_clients_sign_in_every_n_requests_and_work_round_robin_in_between():
    from itertools import islice

    from operations.management.commands.bench_api import OPERATIONS, _schedule

    ops = list(OPERATIONS)
    sequence = list(islice(_schedule(ops, login_every=4, offset=0), 12))
    assert sequence == ["list_kbs", "list_files", "search", "login", "chat", "list_kbs", "list_files", "login",
                        "search", "chat", "list_kbs", "login"]
    # 0: login takes its turn like the others; clients start at different points of the cycle
    assert list(islice(_schedule(ops, login_every=0, offset=3), 6)) == [*ops[3:], *ops[:4]]
    assert list(islice(_schedule(["login"], login_every=4, offset=0), 3)) == ["login"] * 3
    first = list(islice(_schedule(ops, login_every=20, offset=7), 40))
    assert first.count("login") == 2 and first[12] == "login"


def test_bench_api_rejects_an_unknown_operation():
    with pytest.raises(CommandError, match="--operations"):
        call_command("bench_api", "--operations", "list_kbs,upload", "--json")


def test_concurrent_logins_of_one_user_all_succeed(settings):
    """Many clients log in as the same user at once (a load balancer, a script): none may get a 503."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    settings.RATE_LIMIT_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the race, not the hashing
    user = UserFactory(password="correct-horse-battery")

    def login(_):
        try:
            response = APIClient().post("/api/v1/auth/login", {"username": user.username,
                                                                "password": "correct-horse-battery"}, format="json")
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(login, range(120)))
    assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}


def test_bench_http_sends_again_on_a_kept_alive_connection_the_server_closed_but_not_on_a_fresh_one():
    import socket
    import threading

    from operations.management.commands.bench_api import BenchHttp

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served = []

    def serve():
        # 1st connection: answers one request, then closes while the client keeps it (an idle timeout);
        # 2nd: answers; 3rd: closes before answering.
        for answer in (True, True, False):
            conn, _ = listener.accept()
            request = conn.recv(65536)
            served.append(request.split(b"\r\n", 1)[0])
            if answer:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer-Timing: app;dur=1.5\r\n\r\nok")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with BenchHttp(f"http://127.0.0.1:{port}", timeout=5) as http:
        first = http.get("/a")
        assert first.status_code == 200 and first.text == "ok"
        assert first.headers.get("server-timing") == "app;dur=1.5"
        second = http.post("/b", json={"x": 1})  # the kept connection is closed: sent again on a new one
        assert second.status_code == 200
        with pytest.raises(OSError):  # a fresh connection that fails is an error, never sent twice
            http.get("/c")
    thread.join(5)
    listener.close()
    assert served == [b"GET /a HTTP/1.1", b"POST /b HTTP/1.1", b"GET /c HTTP/1.1"]


def test_the_by_hand_launcher_runs_bench_api_on_its_own_private_stack_with_nothing_set(tmp_path):
    """`scripts/bench_api.py` (make bench-api) from a shell that names no store: it starts its own, runs the
    benchmark against them, reports, and leaves no server running and no run directory behind."""
    import hashlib
    import os
    import subprocess
    import sys

    import MySQLdb

    store_settings = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "TEST_DATABASE_NAME", "MONGODB_URI", "MILVUS_URI",
                      "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "DATA_DIR",
                      "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    database = f"test_layra_bench_{hashlib.sha1(str(settings.BASE_DIR).encode()).hexdigest()[:8]}"
    env = {key: value for key, value in os.environ.items() if key not in store_settings}
    env.update({"BENCH_DATABASE_URL": f"mysql://root@127.0.0.1:3306/{database}", "TMPDIR": str(tmp_path)})
    try:
        done = subprocess.run(
            [sys.executable, str(Path(settings.BASE_DIR) / "scripts" / "bench_api.py"), "--clients", "2",
             "--seconds", "2", "--think-ms", "50", "--operations", "list_kbs,list_files", "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert set(report["operations"]) == {"list_kbs", "list_files"}
        assert all(figures["count"] > 0 for figures in report["operations"].values()), report
        assert report["errors"] == 0, report["error_samples"]
        # what each store of the stack cost the host (the set-up wrote to Mongo and S3)
        used = json.loads(done.stderr.split("stack CPU seconds, whole run with set-up: ", 1)[1].splitlines()[0])
        assert set(used) == {"redis", "mongo", "milvus", "milvus_lite", "s3"}, used
        assert used["mongo"] > 0 and used["s3"] > 0, used
        # its stack went with it: the run directory is removed and no server it started (redis-server and
        # Milvus Lite are given paths under it) is still running
        run_dir = Path(done.stderr.split("private stack in ", 1)[1].splitlines()[0])
        assert run_dir.parent == tmp_path and not run_dir.exists()
        assert not [pid for pid, cmdline in _cmdlines() if str(tmp_path) in cmdline]
    finally:
        connection = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        connection.close()


def _cmdlines():
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        yield process.pid, " ".join(process.info["cmdline"] or [])


def test_bench_api_names_the_store_that_does_not_answer_instead_of_a_traceback(services):
    from tests.test_faults import down

    with down(services, "redis"), pytest.raises(CommandError, match=r"redis \(\w+Error\).*make bench-api"):
        call_command("bench_api", "--clients", "1", "--seconds", "1", "--json")

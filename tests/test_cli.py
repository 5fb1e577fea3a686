"""The `layra` command (clients/python) end to end, run as the installed console script against the live test
server, a real Celery worker and the fake LLM: log in, create a knowledge base, upload with --wait, search, ask
with a streamed answer and its sources, run a workflow, delete the knowledge base; errors in words with a
non-zero exit status. The client library's own behaviour (token refresh, errors) is tested in-process too."""

import json
import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chat.tests.helpers import text_pdf
from tests.factories import UserFactory
from tests.fake_llm import FakeLLM
from tests.workflows_helpers import chain, node

ROOT = Path(__file__).resolve().parent.parent
LAYRA = Path(sys.executable).parent / "layra"  # scripts/lib.sh client_install puts it there
SOURCES = ROOT / "clients" / "python" / "src"
PASSWORD = "correct-horse-battery"  # tests/factories.UserFactory's
ANSWER = "The warranty lasts two years from the date of purchase."

pytestmark = [
    pytest.mark.skipif(not LAYRA.exists(), reason="the client is not installed (scripts/lib.sh client_install)"),
    pytest.mark.timeout(300),
]


class Cli:
    """The console script with its own configuration file; PYTHONPATH puts this checkout's client first, so an
    install older than the sources cannot hide a change."""

    def __init__(self, home: Path):
        self.config = home / "config" / "layra.json"
        # Buffered output, as on a pipe: only the command's own flushes make the answer stream.
        drop = ("LAYRA_URL", "LAYRA_API_KEY", "PYTHONUNBUFFERED")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update({"HOME": str(home), "LAYRA_CONFIG": str(self.config), "PYTHONPATH": str(SOURCES)})

    def __call__(self, *args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(LAYRA), *args], input=stdin, capture_output=True, text=True, timeout=240,
                              env={**self.env, **(env or {})})

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(LAYRA), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.env)


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path)


@pytest.fixture
def fake_llm():
    server = FakeLLM(reply=ANSWER)
    yield server
    server.close()


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"rc {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def _read_until(process: subprocess.Popen, text: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.slow
def test_cli_from_login_to_a_streamed_cited_answer(live_server, celery_worker, cli, fake_llm, tmp_path):
    from layra_client import Client, NotLoggedIn

    user = UserFactory()
    login = _ok(cli("login", live_server.url, "--username", user.username, "--password-stdin", stdin=PASSWORD))
    assert f"as {user.username}" in login.stderr
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config.parent.stat().st_mode) == 0o700
    stored = json.loads(cli.config.read_text())
    assert stored["url"] == live_server.url and stored["refresh_token"] and PASSWORD not in cli.config.read_text()
    assert _ok(cli("whoami")).stdout.strip() == f"{user.username} on {live_server.url}"

    kb_id = _ok(cli("kb", "create", "Manuals")).stdout.strip()
    listing = _ok(cli("kb", "ls")).stdout
    assert kb_id in listing and "Manuals" in listing

    warranty, setup = tmp_path / "warranty.pdf", tmp_path / "setup.pdf"
    warranty.write_bytes(text_pdf(["The warranty lasts two years.", "Returns are accepted within 30 days."]))
    setup.write_bytes(text_pdf(["Plug the device in before the first use."]))
    upload = _ok(cli("upload", "Manuals", str(warranty), str(setup), "--wait"))
    assert "Uploading warranty.pdf [" in upload.stderr and "100%" in upload.stderr
    assert "Processing warranty.pdf [" in upload.stderr and "2/2 pages" in upload.stderr
    lines = upload.stdout.splitlines()
    assert [line.split()[1:] for line in lines] == [["warranty.pdf", "2", "pages"], ["setup.pdf", "1", "page"]]
    files = {f["filename"]: f for f in json.loads(_ok(cli("files", kb_id, "--json")).stdout)}
    assert {name: (f["status"], f["page_count"]) for name, f in files.items()} == {
        "warranty.pdf": ("completed", 2), "setup.pdf": ("completed", 1)}

    search = _ok(cli("search", "How long does the warranty last?", "--kb", "Manuals")).stdout
    assert search.splitlines()[0].startswith("1. warranty.pdf, page 1  (score ")
    assert "warranty lasts two years" in search
    hits = json.loads(_ok(cli("search", "plug the device in", "--kb", kb_id, "--json", "--top-k", "1")).stdout)
    assert [(h["filename"], h["page_number"]) for h in hits] == [("setup.pdf", 1)]

    # A model to answer with (the CLI has no model command: the client library adds it).
    with Client.login(live_server.url, user.username, PASSWORD) as client:
        client.models.create(model_name="fake-vision-model", model_url=fake_llm.url, api_key="sk-test-0000abcd",
                             select=True, top_K=1)

    # The answer streams: its first word is on the terminal while the model is still holding back the rest.
    fake_llm.mode, fake_llm.delay = "stall", 3.0
    process = cli.popen("ask", "How long is the warranty?", "--kb", "Manuals")
    first = _read_until(process, b"The ", timeout=60)
    assert first == b"The ", first  # the rest comes 3 s later, after the model's pause
    assert process.poll() is None
    out, err = process.communicate(timeout=120)
    out = (first + out).decode()
    assert process.returncode == 0, err
    assert out.startswith(ANSWER + "\n")
    assert "Sources:\n[1] warranty.pdf, page 1  (score " in out
    sent = fake_llm.last["messages"][-1]["content"]
    assert any("warranty lasts two years" in part.get("text", "") for part in sent)
    assert "conversation " in err.decode()

    # Deleting needs --yes away from a terminal.
    refused = cli("kb", "rm", "Manuals")
    assert refused.returncode == 1 and "needs --yes" in refused.stderr
    assert "Deleted knowledge base 'Manuals'" in _ok(cli("kb", "rm", "Manuals", "--yes")).stderr
    assert kb_id not in _ok(cli("kb", "ls")).stdout
    missing = cli("search", "warranty", "--kb", "Manuals")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: No knowledge base with the id or name 'Manuals'."

    # Logging out revokes the session on the server and forgets the tokens here.
    tokens = json.loads(cli.config.read_text())
    assert "Logged out." in _ok(cli("logout")).stderr
    assert json.loads(cli.config.read_text()) == {"url": live_server.url}
    assert cli("whoami").returncode == 1
    with pytest.raises(NotLoggedIn):
        Client(live_server.url, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]).me()


@pytest.mark.slow
def test_cli_runs_a_workflow_with_inputs_and_reports_a_failed_run(live_server, celery_worker, cli):
    from layra_client import Client

    user = UserFactory()
    with Client.login(live_server.url, user.username, PASSWORD) as client:
        nodes, edges = chain(node("start", "start"),
                             node("v", "variable", assignments={"greeting": "'Hello ' + name", "share": "10 / n"}),
                             node("end", "end", outputs={"greeting": "greeting", "share": "share"}))
        client.workflows.create({"workflow_name": "Greeter", "nodes": nodes, "edges": edges, "start_node": "start"})
        key = client.api_keys.create("cli test")["key"]

    # An API key from the environment: no login needed.
    env = {"LAYRA_URL": live_server.url, "LAYRA_API_KEY": key}
    run = _ok(cli("run", "Greeter", "--input", "name=Ada", "--input", "n:=4", env=env))
    assert json.loads(run.stdout) == {"greeting": "Hello Ada", "share": 2.5}
    assert "started" in run.stderr and "finished v (variable)" in " ".join(run.stderr.split())

    failed = cli("run", "Greeter", "-i", "name=Ada", "-i", "n:=0", env=env)
    assert failed.returncode == 1
    assert "error: the run failed:" in failed.stderr and "division by zero" in failed.stderr

    bad_input = cli("run", "Greeter", "-i", "n:=[1,", env=env)
    assert bad_input.returncode == 1 and "the value is not JSON" in bad_input.stderr


def test_api_errors_are_words_and_a_non_zero_exit(live_server, cli, tmp_path):
    from layra_client import Client

    user = UserFactory()
    wrong = cli("login", live_server.url, "-u", user.username, "--password-stdin", stdin="not the password")
    assert wrong.returncode == 1 and not cli.config.exists()
    assert wrong.stderr.startswith("error: ") and "[HTTP 401" in wrong.stderr

    env = {"LAYRA_URL": live_server.url, "LAYRA_API_KEY": "lyr_not-a-real-key"}
    bad_key = cli("kb", "ls", env=env)
    assert bad_key.returncode == 1
    assert bad_key.stderr.strip() == "error: API key is invalid or revoked. [HTTP 401, authentication_failed]"

    nothing = cli("kb", "ls")
    assert nothing.returncode == 1 and "layra login" in nothing.stderr

    # A stored login is never sent to another server than the one it was made for.
    _ok(cli("login", live_server.url, "-u", user.username, "--password-stdin", stdin=PASSWORD))
    elsewhere = cli("kb", "ls", env={"LAYRA_URL": "http://127.0.0.1:9"})
    assert elsewhere.returncode == 1 and f"the stored login is for {live_server.url}" in elsewhere.stderr

    blank = cli("kb", "create", " ")
    assert blank.returncode == 1 and "[HTTP 400, validation_error]" in blank.stderr

    # One file refused does not stop the others; the status says something failed.
    kb_id = _ok(cli("kb", "create", "Mixed")).stdout.strip()
    (tmp_path / "notes.txt").write_text("Meeting notes: the budget is approved.")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00" + bytes(200))
    mixed = cli("upload", kb_id, str(tmp_path / "tool.exe"), str(tmp_path / "notes.txt"))
    assert mixed.returncode == 1
    assert f"{tmp_path / 'tool.exe'}: not uploaded: " in mixed.stderr and "[HTTP 415" in mixed.stderr
    assert [line.split()[1] for line in mixed.stdout.splitlines()] == ["notes.txt"]
    absent = cli("upload", kb_id, str(tmp_path / "notes.txt"), str(tmp_path / "absent.pdf"))
    assert absent.returncode == 1 and "No such file: " in absent.stderr and "nothing was uploaded" in absent.stderr
    assert len(json.loads(_ok(cli("files", kb_id, "--json")).stdout)) == 1

    # No model yet: the question is refused in words, and no empty conversation is left behind.
    no_model = cli("ask", "What is approved?", "--kb", "Mixed")
    assert no_model.returncode == 1 and "No model is selected." in no_model.stderr, no_model.stderr
    with Client.login(live_server.url, user.username, PASSWORD) as client:
        assert client.conversations.list() == []


def test_client_refreshes_an_expired_access_token_and_saves_the_new_pair(live_server):
    from layra_client import ApiError, Client, NotLoggedIn

    user = UserFactory()
    with Client.login(live_server.url, user.username, PASSWORD) as first:
        refresh = first.api.refresh_token
    saved = []
    client = Client(live_server.url, access_token="expired.or.garbage", refresh_token=refresh,
                    on_tokens=lambda access, new_refresh: saved.append((access, new_refresh)))
    assert client.me()["username"] == user.username
    assert len(saved) == 1 and saved[0][1] != refresh  # the refresh token is spent once and replaced
    assert client.knowledge_bases.list() == []

    other = UserFactory()
    with Client.login(live_server.url, other.username, PASSWORD) as client_b:
        kb = client_b.knowledge_bases.create("Private")
    with pytest.raises(ApiError) as raised:
        client.knowledge_bases.get(kb["knowledge_base_id"])
    assert raised.value.status == 404 and str(raised.value) == "Knowledge base not found. [HTTP 404, not_found]"

    # The spent refresh token used again: the server revokes the whole login session, and the client says so.
    spent = Client(live_server.url, access_token="garbage", refresh_token=refresh)
    with pytest.raises(NotLoggedIn, match=r"The login has expired \(.+\); run `layra login` again"):
        spent.me()
    client.api.access_token = "garbage"
    with pytest.raises(NotLoggedIn):
        client.me()


def test_the_test_command_installs_the_client_again_only_when_its_sources_change(tmp_path):
    """scripts/lib.sh client_install against a stand-in venv whose python logs each pip call."""
    import shutil

    root, venv = tmp_path / "checkout", tmp_path / "venv"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "lib.sh", root / "scripts" / "lib.sh")
    shutil.copytree(ROOT / "clients" / "python", root / "clients" / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "pip.log"
    (venv / "bin" / "python").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (venv / "bin" / "python").chmod(0o755)

    def client_install() -> list[str]:
        before = log.read_text().splitlines() if log.exists() else []
        subprocess.run(["bash", "-c", f'source "{root}/scripts/lib.sh" && client_install'], check=True,
                       env={"PATH": os.environ["PATH"], "LAYRA_VENV": str(venv)}, capture_output=True)
        return (log.read_text().splitlines() if log.exists() else [])[len(before):]

    install = [f"-m pip install -q {root}/clients/python"]
    assert client_install() == install
    assert client_install() == []
    (root / "clients" / "python" / "tests" / "test_more.py").write_text("# tests are not installed\n")
    assert client_install() == []
    with open(root / "clients" / "python" / "src" / "layra_client" / "cli.py", "a") as f:
        f.write("# changed\n")
    assert client_install() == install
    assert "\nclient_install\n" in (ROOT / "scripts" / "test.sh").read_text()

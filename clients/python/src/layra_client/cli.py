"""The `layra` command: log in, manage knowledge bases, upload and wait for ingestion, search, ask with a
streamed answer, and run workflows. API errors are printed in words with a non-zero exit status:
1 an error, 2 a usage error, 3 a run that stopped to wait for a person, 130 interrupted."""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

from layra_client import __version__, config
from layra_client.client import Client
from layra_client.errors import ApiError, LayraError
from layra_client.output import ProgressBar, citations_print, one_line, size, table
from layra_client.types import TERMINAL_TASK_STATES


def _client(args: argparse.Namespace) -> Client:
    found = config.settings()
    return Client(found.url, api_key=found.api_key, access_token=found.access_token,
                  refresh_token=found.refresh_token, on_tokens=config.tokens_store if found.stored else None,
                  timeout=args.timeout)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- login ------------------------------------------------------------------------------------------------------

def cmd_login(args: argparse.Namespace) -> int:
    stored = config.load()
    url = args.url or os.environ.get("LAYRA_URL") or stored.get("url")
    if not url:
        url = input("Server URL (e.g. http://127.0.0.1:8000): ").strip()
    api_key = args.api_key
    if args.api_key_stdin:
        api_key = sys.stdin.readline().strip()
    if api_key:
        client = Client(url, api_key=api_key, timeout=args.timeout)
        user = client.me()  # an invalid key fails here, before anything is stored
        data = {"url": client.url, "api_key": api_key}
    else:
        username = args.username or input("Username: ").strip()
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
        client = Client.login(url, username, password, timeout=args.timeout)
        user = client.me()
        data = {"url": client.url, "access_token": client.api.access_token,
                "refresh_token": client.api.refresh_token}
    path = config.save(data)
    _say(f"Logged in to {client.url} as {user['username']} (saved in {path}).")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    data = config.load()
    if data.get("access_token") and not os.environ.get("LAYRA_API_KEY"):
        try:
            _client(args).logout()
        except LayraError as exc:
            _say(f"The server did not revoke the session ({exc}); forgetting it here anyway.")
    config.save({"url": data["url"]} if data.get("url") else {})
    _say("Logged out.")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    client = _client(args)
    user = client.me()
    if args.json:
        _print_json(user)
    else:
        print(f"{user['username']} on {client.url}")
    return 0


# -- knowledge bases --------------------------------------------------------------------------------------------

def cmd_kb_create(args: argparse.Namespace) -> int:
    kb = _client(args).knowledge_bases.create(args.name)
    if args.json:
        _print_json(kb)
    else:
        print(kb["knowledge_base_id"])
        _say(f"Created knowledge base {kb['knowledge_base_name']!r}.")
    return 0


def cmd_kb_ls(args: argparse.Namespace) -> int:
    kbs = _client(args).knowledge_bases.list(name=args.name)
    if args.json:
        _print_json(kbs)
    elif not kbs:
        _say("No knowledge base yet: `layra kb create NAME`.")
    else:
        table([[kb["knowledge_base_id"], kb["knowledge_base_name"], str(kb["file_count"]), str(kb["page_count"])]
               for kb in kbs], ["ID", "NAME", "FILES", "PAGES"])
    return 0


def cmd_kb_rm(args: argparse.Namespace) -> int:
    client = _client(args)
    kb = client.knowledge_bases.resolve(args.kb)
    label = f"{kb['knowledge_base_name']!r} ({kb['knowledge_base_id']}, {kb['file_count']} files)"
    if not args.yes:
        if not sys.stdin.isatty():
            raise LayraError(f"Deleting {label} needs --yes when not run from a terminal.")
        if input(f"Delete {label} with its files? [y/N] ").strip().lower() not in ("y", "yes"):
            _say("Nothing deleted.")
            return 1
    client.knowledge_bases.delete(kb["knowledge_base_id"])
    _say(f"Deleted knowledge base {label}.")
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    client = _client(args)
    files = client.files.list(client.knowledge_bases.resolve(args.kb)["knowledge_base_id"])
    if args.json:
        _print_json(files)
    else:
        table([[f["file_id"], f["filename"], f["status"], str(f["page_count"]), f["error"] or ""] for f in files],
              ["ID", "NAME", "STATUS", "PAGES", "ERROR"])
    return 0


# -- upload -----------------------------------------------------------------------------------------------------

def _wait(client: Client, file: dict, timeout: float | None) -> dict:
    bar = ProgressBar(f"Processing {file['filename']}")

    def show(task: dict) -> None:
        pages = f"{task['pages_done']}/{task['pages_total']} pages, " if task["pages_total"] else ""
        bar.update(task["processed"], task["total"], f"{pages}{task['state']}")

    task = client.tasks.wait(file["task_id"], on_progress=show, timeout=timeout)
    bar.done()
    return task


def cmd_upload(args: argparse.Namespace) -> int:
    missing = [path for path in args.files if not Path(path).is_file()]
    if missing:
        raise LayraError(f"No such file: {', '.join(missing)} (nothing was uploaded).")
    client = _client(args)
    kb = client.knowledge_bases.resolve(args.kb)
    failed = 0
    uploaded: list[dict] = []
    for path in args.files:
        bar = ProgressBar(f"Uploading {Path(path).name}")
        try:
            files = client.files.upload(kb["knowledge_base_id"], [path],
                                        progress=lambda sent, total, bar=bar: bar.update(
                                            sent, total, f"{size(sent)} of {size(total)}"))
        except ApiError as exc:
            if exc.status not in (400, 413, 415):  # about this file; anything else stops the whole upload
                bar.done()
                raise
            bar.done(f"{path}: not uploaded: {exc}")
            failed += 1
            continue
        bar.done()
        uploaded.extend(files)
    results = []
    for file in uploaded:
        if args.wait and file.get("task_id") and file["status"] not in TERMINAL_TASK_STATES:
            task = _wait(client, file, args.wait_timeout)
            file = {**file, **client.files.get(file["file_id"]), "error": task["error"] or None}
        results.append(file)
        if file["status"] in ("failed", "cancelled"):
            failed += 1
    if args.json:
        _print_json(results)
    else:
        for file in results:
            pages = file["page_count"]
            detail = f"{pages} page{'s' if pages != 1 else ''}" if file["status"] == "completed" else file["status"]
            if file.get("error"):
                detail += f": {file['error']}"
            print(f"{file['file_id']}  {file['filename']}  {detail}")
    return 1 if failed else 0


# -- search and ask ---------------------------------------------------------------------------------------------

def cmd_search(args: argparse.Namespace) -> int:
    client = _client(args)
    hits = client.search(args.query, knowledge_base_ids=client.knowledge_bases.resolve_ids(args.kb),
                         top_k=args.top_k, mode=args.mode)
    if args.json:
        _print_json(hits)
        return 0
    if not hits:
        _say("No page matched.")
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. {hit['filename']}, page {hit['page_number']}  (score {hit['score']:.3f})")
        if hit.get("snippet"):
            print(f"   {one_line(hit['snippet'])}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    client = _client(args)
    kb_ids = client.knowledge_bases.resolve_ids(args.kb) if args.kb else None
    conversation_id = args.conversation or client.conversations.create(one_line(args.question, 60))[
        "conversation_id"]
    citations: list[dict] = []
    answer: list[str] = []
    outcome: dict = {}
    events = client.conversations.ask_stream(conversation_id, args.question, knowledge_base_ids=kb_ids,
                                             model_id=args.model)
    try:
        first = next(events, None)
    except ApiError:
        if not args.conversation:  # refused before anything was recorded: leave no empty conversation behind
            client.conversations.delete(conversation_id)
        raise
    for event in itertools.chain([first] if first else [], events):
        if event.name == "citations":
            citations = event.data.get("citations", [])
        elif event.name == "token":
            answer.append(event.data.get("text", ""))
            if not args.json:
                sys.stdout.write(event.data.get("text", ""))
                sys.stdout.flush()
        elif event.name in ("done", "error"):
            outcome = {"event": event.name, **event.data}
    if args.json:
        _print_json({"conversation_id": conversation_id, "answer": "".join(answer), "citations": citations,
                     **{k: v for k, v in outcome.items() if k != "event"}})
    else:
        if answer:
            sys.stdout.write("\n")
        citations_print(citations)
        _say(f"(conversation {conversation_id}: `layra ask --conversation {conversation_id} ...` to follow up)")
    if outcome.get("event") != "done":
        message = outcome.get("message") or "The answer stream ended before the answer was complete."
        _say(f"error: {message}")
        return 1
    return 0


# -- workflows --------------------------------------------------------------------------------------------------

def _inputs(pairs: list[str]) -> dict:
    """`k=v` gives a string, `k:=v` a JSON value (a number, true, a list...)."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise LayraError(f"--input {pair!r}: write name=value (a string) or name:=JSON.")
        if name.endswith(":"):
            try:
                inputs[name[:-1]] = json.loads(value)
            except ValueError as exc:
                raise LayraError(f"--input {pair!r}: the value is not JSON ({exc}).") from exc
        else:
            inputs[name] = value
    return inputs


def cmd_run(args: argparse.Namespace) -> int:
    client = _client(args)
    inputs = _inputs(args.input)
    workflow = client.workflows.resolve(args.workflow)
    run = client.runs.start(workflow["workflow_id"], inputs)
    _say(f"Run {run['run_id']} of {workflow['workflow_name']!r} started.")
    if args.no_wait:
        print(run["run_id"])
        return 0

    def show(event) -> None:
        data = event.data
        if event.name in ("node_started", "node_finished"):
            _say(f"  {event.name.split('_')[1]:8} {data.get('node_id')} ({data.get('type')})")
        elif event.name == "node_error":
            _say(f"  error    {data.get('node_id')}: {data.get('message')}")

    run = client.runs.wait(run["run_id"], on_event=show)
    if args.json:
        _print_json(run)
    else:
        _print_json(run["outputs"])
    if run["status"] == "succeeded":
        return 0
    if run["status"] in ("waiting_input", "paused"):
        prompt = (run.get("pending_input") or {}).get("prompt") or ""
        _say(f"The run {run['run_id']} is {run['status'].replace('_', ' ')}{': ' + prompt if prompt else ''}.")
        return 3
    error = run.get("error") or {}
    _say(f"error: the run {run['status']}: {error.get('message') or error or 'no detail'}")
    return 1


# -- parser -----------------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="layra", description="Command-line client for a LAYRA server.")
    top.add_argument("--version", action="version", version=f"layra {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = sub.add_parser("login", parents=[common], help="log in and remember the server",
                           description="Log in with a username and password (the token pair is kept and refreshed) "
                                       "or with an API key. Saved in ~/.config/layra/config.json, mode 0600.")
    login.add_argument("url", nargs="?", help="server URL, e.g. http://127.0.0.1:8000 (default: LAYRA_URL)")
    login.add_argument("--username", "-u")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--api-key", help="an API key (lyr_...) instead of a password (visible in `ps`: prefer "
                                         "--api-key-stdin)")
    login.add_argument("--api-key-stdin", action="store_true", help="read an API key from stdin")
    login.set_defaults(func=cmd_login)
    sub.add_parser("logout", parents=[common], help="revoke and forget the stored login").set_defaults(
        func=cmd_logout)
    sub.add_parser("whoami", parents=[common], help="who the stored login is").set_defaults(func=cmd_whoami)

    kb = sub.add_parser("kb", help="knowledge bases").add_subparsers(dest="kb_command", required=True,
                                                                      metavar="ACTION")
    create = kb.add_parser("create", parents=[common], help="create a knowledge base (prints its id)")
    create.add_argument("name")
    create.set_defaults(func=cmd_kb_create)
    ls = kb.add_parser("ls", parents=[common], help="list knowledge bases")
    ls.add_argument("--name", help="only names containing this")
    ls.set_defaults(func=cmd_kb_ls)
    rm = kb.add_parser("rm", parents=[common], help="delete a knowledge base with its files")
    rm.add_argument("kb", help="id or exact name")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")
    rm.set_defaults(func=cmd_kb_rm)

    files = sub.add_parser("files", parents=[common], help="list a knowledge base's files and their state")
    files.add_argument("kb", help="id or exact name")
    files.set_defaults(func=cmd_files)

    upload = sub.add_parser("upload", parents=[common], help="upload files into a knowledge base")
    upload.add_argument("kb", help="id or exact name")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--wait", action="store_true", help="follow each file's ingestion until it is done")
    upload.add_argument("--wait-timeout", type=float, default=None, help="give up waiting after this many seconds")
    upload.set_defaults(func=cmd_upload)

    search = sub.add_parser("search", parents=[common], help="the best pages for a query")
    search.add_argument("query")
    search.add_argument("--kb", action="append", required=True, help="id or name (repeatable)")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    search.set_defaults(func=cmd_search)

    ask = sub.add_parser("ask", parents=[common], help="ask a question; the answer streams, then its sources")
    ask.add_argument("question")
    ask.add_argument("--kb", action="append", help="search these (id or name, repeatable) instead of the "
                                                   "model's saved knowledge bases")
    ask.add_argument("--model", help="model config id (default: your selected model)")
    ask.add_argument("--conversation", help="continue this conversation (default: a new one)")
    ask.set_defaults(func=cmd_ask)

    run = sub.add_parser("run", parents=[common], help="run a workflow and print its outputs")
    run.add_argument("workflow", help="id or exact name")
    run.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                     help="an input: name=text, or name:=JSON (repeatable)")
    run.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    run.set_defaults(func=cmd_run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except LayraError as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return 1

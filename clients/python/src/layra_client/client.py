"""The LAYRA client: one object per server, with the API's resources as attributes.

    from layra_client import Client

    with Client("http://127.0.0.1:8000", api_key="lyr_...") as layra:
        kb = layra.knowledge_bases.create("Manuals")
        files = layra.files.upload(kb["knowledge_base_id"], ["manual.pdf"])
        layra.tasks.wait(files[0]["task_id"])
        for hit in layra.search("warranty period", knowledge_base_ids=[kb["knowledge_base_id"]]):
            print(hit["filename"], hit["page_number"], hit["snippet"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from layra_client.errors import LayraError
from layra_client.multipart import MultipartFiles, Progress
from layra_client.sse import Event
from layra_client.transport import TokensSaved, Transport
from layra_client.types import (
    TERMINAL_RUN_STATES,
    TERMINAL_TASK_STATES,
    Answer,
    Conversation,
    File,
    Hit,
    KnowledgeBase,
    ModelConfig,
    Run,
    Task,
    TokenPair,
    User,
    Workflow,
)


class _Resource:
    def __init__(self, api: Transport):
        self._api = api


def _pick(items: list[dict], ref: str, *, id_key: str, name_key: str, what: str) -> dict:
    """The item whose id is `ref`, else the one whose name is `ref` exactly (ambiguous names are an error)."""
    for item in items:
        if item[id_key] == ref:
            return item
    named = [item for item in items if item[name_key] == ref]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(item[id_key] for item in named)
        raise LayraError(f"{len(named)} {what}s are named {ref!r} ({ids}): give the id instead.")
    raise LayraError(f"No {what} with the id or name {ref!r}.")


class KnowledgeBases(_Resource):
    def list(self, *, name: str | None = None) -> list[KnowledgeBase]:
        return list(self._api.pages("knowledge-bases/", name=name))

    def create(self, name: str) -> KnowledgeBase:
        return self._api.post("knowledge-bases/", {"knowledge_base_name": name})

    def get(self, knowledge_base_id: str) -> KnowledgeBase:
        return self._api.get(f"knowledge-bases/{knowledge_base_id}/")

    def rename(self, knowledge_base_id: str, name: str) -> KnowledgeBase:
        return self._api.json("PATCH", f"knowledge-bases/{knowledge_base_id}/", json={"knowledge_base_name": name})

    def delete(self, knowledge_base_id: str) -> None:
        self._api.delete(f"knowledge-bases/{knowledge_base_id}/")

    def resolve(self, ref: str) -> KnowledgeBase:
        """A knowledge base by its id or its exact name."""
        return _pick(self.list(), ref, id_key="knowledge_base_id", name_key="knowledge_base_name",
                     what="knowledge base")

    def resolve_ids(self, refs: Iterable[str]) -> list[str]:
        """The ids of knowledge bases given by id or exact name (one listing for them all)."""
        kbs = self.list()
        return [_pick(kbs, ref, id_key="knowledge_base_id", name_key="knowledge_base_name",
                      what="knowledge base")["knowledge_base_id"] for ref in refs]


class Files(_Resource):
    def upload(self, knowledge_base_id: str, paths: Iterable[str | Path], *,
               progress: Progress | None = None) -> list[File]:
        """Upload files in one request; `progress(sent, total)` is called as their bytes go out. Ingestion starts
        at once: each file has a `task_id` to follow (Tasks.wait)."""
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.is_file():
                raise LayraError(f"{path}: no such file.")
        body = MultipartFiles(paths, progress=progress)
        response = self._api.send(
            "POST", f"knowledge-bases/{knowledge_base_id}/files/", content=body,
            headers={"Content-Type": body.content_type, "Content-Length": str(body.length)},
            timeout=httpx.Timeout(self._api.timeout, write=None, read=max(self._api.timeout, 600.0)))
        return response.json()

    def list(self, knowledge_base_id: str) -> list[File]:
        return list(self._api.pages(f"knowledge-bases/{knowledge_base_id}/files/"))

    def get(self, file_id: str) -> File:
        return self._api.get(f"files/{file_id}/")

    def delete(self, file_id: str) -> None:
        self._api.delete(f"files/{file_id}/")

    def download(self, file_id: str) -> bytes:
        return self._api.send("GET", f"files/{file_id}/download/").content

    def page_image(self, file_id: str, page_number: int, *, size: str = "full") -> bytes:
        return self._api.send("GET", f"files/{file_id}/pages/{page_number}/image/", params={"size": size}).content


class Tasks(_Resource):
    """Ingestion tasks: one per uploaded file."""

    def get(self, task_id: str) -> Task:
        return self._api.get(f"tasks/{task_id}/")

    def cancel(self, task_id: str) -> Task:
        return self._api.post(f"tasks/{task_id}/cancel/")

    def events(self, task_id: str) -> Iterator[Task]:
        """The task's progress as it changes, until it is over (the stream is reopened when the server closes it
        before the end)."""
        while True:
            last: Task | None = None
            try:
                for event in self._api.events("GET", f"tasks/{task_id}/events/"):
                    if event.name in ("progress", "end", "timeout"):
                        last = event.data  # type: ignore[assignment]
                        yield last
                    if event.name == "end":
                        return
            except LayraError:
                if last is None:
                    raise  # nothing came through: not a stream that merely went quiet
            if last is None:  # the stream closed empty: read the state, and wait a little before reopening
                last = self.get(task_id)
                yield last
                if last["state"] not in TERMINAL_TASK_STATES:
                    time.sleep(1)
            if last["state"] in TERMINAL_TASK_STATES:
                return

    def wait(self, task_id: str, *, on_progress: Callable[[Task], None] | None = None,
             timeout: float | None = None) -> Task:
        """Follow the task until it is over (completed, failed or cancelled) and return its last state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        task = None
        for task in self.events(task_id):
            if on_progress:
                on_progress(task)
            if deadline is not None and time.monotonic() > deadline:
                raise LayraError(f"Task {task_id} is still {task['state']} after {timeout:g} s.")
        return task if task is not None else self.get(task_id)


class Conversations(_Resource):
    def list(self) -> list[Conversation]:
        return list(self._api.pages("conversations/"))

    def create(self, name: str = "") -> Conversation:
        return self._api.post("conversations/", {"conversation_name": name} if name else {})

    def get(self, conversation_id: str) -> dict:
        return self._api.get(f"conversations/{conversation_id}/")

    def delete(self, conversation_id: str) -> None:
        self._api.delete(f"conversations/{conversation_id}/")

    @staticmethod
    def _body(question: str, knowledge_base_ids: list[str] | None, model_id: str | None) -> dict:
        body: dict[str, Any] = {"question": question}
        if knowledge_base_ids is not None:
            body["knowledge_base_ids"] = list(knowledge_base_ids)
        if model_id:
            body["model_id"] = model_id
        return body

    def ask_stream(self, conversation_id: str, question: str, *, knowledge_base_ids: list[str] | None = None,
                   model_id: str | None = None) -> Iterator[Event]:
        """The answer as it streams: `citations` (data: {citations: [Hit...]}) first, a `token` ({text}) per
        piece, then `done` ({status, usage}) or `error` ({message, code}). `knowledge_base_ids` searches these
        for this question instead of the model's saved ones."""
        yield from self._api.events("POST", f"conversations/{conversation_id}/messages/",
                                    json=self._body(question, knowledge_base_ids, model_id))

    def ask(self, conversation_id: str, question: str, *, knowledge_base_ids: list[str] | None = None,
            model_id: str | None = None) -> Answer:
        """The whole answer at once, with its citations."""
        return self._api.post(f"conversations/{conversation_id}/messages/",
                              self._body(question, knowledge_base_ids, model_id), params={"stream": "false"})


class Workflows(_Resource):
    def list(self) -> list[Workflow]:
        return list(self._api.pages("workflows/"))

    def get(self, workflow_id: str) -> Workflow:
        return self._api.get(f"workflows/{workflow_id}/")

    def create(self, definition: dict) -> Workflow:
        """A workflow from its JSON (`workflow_name`, `nodes`, `edges`, ...; an export imports as is)."""
        return self._api.post("workflows/", definition)

    def delete(self, workflow_id: str) -> None:
        self._api.delete(f"workflows/{workflow_id}/")

    def resolve(self, ref: str) -> Workflow:
        return _pick(self.list(), ref, id_key="workflow_id", name_key="workflow_name", what="workflow")


class Runs(_Resource):
    def start(self, workflow_id: str, inputs: dict | None = None, *, breakpoints: list[str] | None = None) -> Run:
        return self._api.post(f"workflows/{workflow_id}/runs/", {"inputs": inputs or {},
                                                                 "breakpoints": breakpoints or []})

    def list(self, workflow_id: str) -> list[Run]:
        return list(self._api.pages(f"workflows/{workflow_id}/runs/"))

    def get(self, run_id: str) -> Run:
        return self._api.get(f"runs/{run_id}/")

    def cancel(self, run_id: str) -> Run:
        return self._api.post(f"runs/{run_id}/cancel/")

    def answer(self, run_id: str, value: Any = None, *, action: str = "answer") -> Run:
        """Answer a run's input request (or `action="continue"` past a breakpoint)."""
        return self._api.post(f"runs/{run_id}/input/", {"action": action, "value": value})

    def events(self, run_id: str, *, start: int = 0) -> Iterator[Event]:
        """The run's events from index `start` (run_started, node_started, node_output, node_finished,
        node_error, ...) until it finishes, pauses or waits for input; reopened if the server closes it first."""
        final = {"run_finished", "run_paused", "run_waiting_input"}
        while True:
            seen = False
            for event in self._api.events("GET", f"runs/{run_id}/events/", params={"from": start}):
                seen = True
                if event.id is not None and event.id.isdigit():
                    start = int(event.id) + 1
                yield event
                if event.name in final:
                    return
            if not seen:
                if self.get(run_id)["status"] in TERMINAL_RUN_STATES:
                    return
                time.sleep(1)

    def wait(self, run_id: str, *, on_event: Callable[[Event], None] | None = None) -> Run:
        """Follow the run until it stops (finished, paused or waiting for input) and return its state."""
        for event in self.events(run_id):
            if on_event:
                on_event(event)
        return self.get(run_id)


class Models(_Resource):
    def list(self) -> list[ModelConfig]:
        return list(self._api.pages("models/"))

    def create(self, *, model_name: str, model_url: str, api_key: str = "", select: bool = False,
               **fields: Any) -> ModelConfig:
        return self._api.post("models/", {"model_name": model_name, "model_url": model_url, "api_key": api_key,
                                          "select": select, **fields})


class ApiKeys(_Resource):
    def create(self, name: str) -> dict:
        """A new API key; its `key` (lyr_...) is shown only in this answer."""
        return self._api.post("auth/api-keys/", {"name": name})

    def list(self) -> list[dict]:
        return list(self._api.pages("auth/api-keys/"))

    def delete(self, key_id: str) -> None:
        self._api.delete(f"auth/api-keys/{key_id}/")


class Client:
    """A LAYRA server, authenticated by an API key (`lyr_...`) or a token pair from `Client.login`."""

    def __init__(self, url: str, *, api_key: str | None = None, access_token: str | None = None,
                 refresh_token: str | None = None, on_tokens: TokensSaved | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.api = Transport(url, api_key=api_key, access_token=access_token, refresh_token=refresh_token,
                             on_tokens=on_tokens, timeout=timeout, transport=transport)
        self.knowledge_bases = KnowledgeBases(self.api)
        self.files = Files(self.api)
        self.tasks = Tasks(self.api)
        self.conversations = Conversations(self.api)
        self.workflows = Workflows(self.api)
        self.runs = Runs(self.api)
        self.models = Models(self.api)
        self.api_keys = ApiKeys(self.api)

    @classmethod
    def login(cls, url: str, username: str, password: str, **kwargs: Any) -> Client:
        """Log in with a username and password: the client then holds a token pair it refreshes by itself."""
        client = cls(url, **kwargs)
        pair: TokenPair = client.api.post("auth/login/", {"username": username, "password": password}, auth=False)
        client.api.access_token, client.api.refresh_token = pair["access"], pair["refresh"]
        return client

    @property
    def url(self) -> str:
        return self.api.url

    def me(self) -> User:
        return self.api.get("auth/me/")

    def logout(self) -> None:
        """Revoke the token pair's login session (nothing to do for an API key)."""
        if self.api.access_token and not self.api.api_key:
            self.api.send("POST", "auth/logout/")
        self.api.access_token = self.api.refresh_token = None

    def search(self, query: str, *, knowledge_base_ids: list[str], top_k: int = 5, mode: str = "hybrid",
               score_threshold: float | None = None) -> list[Hit]:
        """The best pages of these knowledge bases for the query (hybrid: BM25 + late-interaction)."""
        body: dict[str, Any] = {"query": query, "knowledge_base_ids": list(knowledge_base_ids), "top_k": top_k,
                                "mode": mode}
        if score_threshold is not None:
            body["score_threshold"] = score_threshold
        return self.api.post("search/", body)["results"]

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

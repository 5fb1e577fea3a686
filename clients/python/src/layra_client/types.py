"""The API's objects as the client returns them: plain dicts, typed for editors and type checkers."""

from __future__ import annotations

from typing import Any, TypedDict


class TokenPair(TypedDict):
    access: str
    refresh: str
    token_type: str
    expires_in: int
    session_id: str


class User(TypedDict):
    username: str
    email: str
    first_name: str
    last_name: str


class KnowledgeBase(TypedDict):
    knowledge_base_id: str
    knowledge_base_name: str
    is_temp: bool
    embedder: str | None
    file_count: int
    page_count: int
    created_at: str
    last_modify_at: str


class File(TypedDict):
    file_id: str
    knowledge_db_id: str
    filename: str
    content_type: str | None
    size: int | None
    status: str  # queued, processing, completed, failed, cancelled
    error: str | None
    task_id: str | None
    page_count: int
    created_at: str


class Task(TypedDict):
    task_id: str
    file_id: str
    knowledge_base_id: str
    state: str  # queued, converting, rendering, embedding, indexing, completed, failed, cancelled
    pages_total: int
    pages_done: int
    error: str
    processed: int
    total: int
    message: str
    eta_seconds: float | None


class Hit(TypedDict):
    """A cited page: the same fields in search results, answers' citations and run outputs."""

    knowledge_base_id: str
    file_id: str
    filename: str
    page_number: int
    score: float
    snippet: str
    image_url: str
    thumbnail_url: str


class Conversation(TypedDict):
    conversation_id: str
    conversation_name: str
    created_at: str
    last_modify_at: str


class Answer(TypedDict):
    """A whole answer (`stream=False`) or one gathered from a stream."""

    conversation_id: str
    message_id: str
    status: str
    answer: str
    citations: list[Hit]
    usage: dict[str, int]


class Workflow(TypedDict):
    workflow_id: str
    workflow_name: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    version: int


class Run(TypedDict):
    run_id: str
    workflow_id: str
    status: str  # pending, running, paused, waiting_input, succeeded, failed, cancelled
    current_node: str | None
    outputs: dict[str, Any]
    error: dict[str, Any] | None
    pending_input: dict[str, Any] | None


class ModelConfig(TypedDict):
    model_id: str
    model_name: str
    model_url: str
    base_used: list[str]
    is_selected: bool


TERMINAL_TASK_STATES = frozenset({"completed", "failed", "cancelled"})
TERMINAL_RUN_STATES = frozenset({"succeeded", "failed", "cancelled"})

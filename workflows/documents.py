"""Workflows, runs, custom nodes and chatflows in MongoDB (DESIGN field names)."""

from enum import StrEnum

import mongoengine as me

from layra.ids import utcnow
from layra.mongo import Document


class RunStatus(StrEnum):
    PENDING = "pending"  # queued for a worker (new, resumed, or recovered from a dead worker)
    RUNNING = "running"
    PAUSED = "paused"  # at a breakpoint
    WAITING_INPUT = "waiting_input"  # at a human_input node
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RUN_WAITING = frozenset({RunStatus.PAUSED, RunStatus.WAITING_INPUT})  # stopped until a person acts


class TurnStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Workflow(Document):
    workflow_id = me.StringField(required=True, unique=True)
    username = me.StringField(required=True)
    workflow_name = me.StringField(required=True, max_length=200)
    nodes = me.ListField(me.DictField())
    edges = me.ListField(me.DictField())
    start_node = me.StringField(default="")
    global_variables = me.DictField()
    workflow_config = me.DictField()
    version = me.IntField(default=1)  # optimistic locking: a save must name the version it read
    is_delete = me.BooleanField(default=False)  # in the trash (workflows.trash)
    deleted_at = me.DateTimeField(null=True)
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "workflows", "indexes": [{"fields": ["username", "is_delete", "-last_modify_at"]},
                                                   {"fields": ["is_delete", "deleted_at"]}]}


class CustomNodes(Document):
    """One document per user: `custom_nodes` maps a saved name to a node config (type + data)."""

    username = me.StringField(required=True, unique=True)
    custom_nodes = me.DictField()

    meta = {"collection": "nodes"}


class WorkflowRun(Document):
    """A run's durable state, saved after every node so another worker can pick it up."""

    run_id = me.StringField(required=True, unique=True)
    workflow_id = me.StringField(required=True)
    username = me.StringField(required=True)
    status = me.StringField(default=RunStatus.PENDING)
    snapshot = me.DictField()  # nodes/edges/start_node/global_variables/workflow_config at start
    variables = me.DictField()
    queue = me.ListField(me.StringField())  # node ids still to execute, front first
    current_node = me.StringField(null=True)
    completed_nodes = me.ListField(me.StringField())
    breakpoints = me.ListField(me.StringField())
    skip_breakpoint = me.StringField(null=True)  # the node a "continue" releases
    pending_input = me.DictField()  # {"node_id", "prompt", "variable"} while waiting
    steps = me.IntField(default=0)
    output_bytes = me.IntField(default=0)
    resumes = me.IntField(default=0)
    cancel_requested = me.BooleanField(default=False)
    error = me.DictField()
    outputs = me.DictField()
    task_id = me.StringField(null=True)
    # A chatflow message's run: {"chatflow_id", "message_id", "user_message"}, the turn recorded when it ends.
    chatflow_turn = me.DictField()
    created_at = me.DateTimeField(default=utcnow)
    started_at = me.DateTimeField(null=True)
    heartbeat_at = me.DateTimeField(null=True)
    owner = me.StringField(null=True)  # the process running it (layra.owner): a dead one's run is claimed at once
    finished_at = me.DateTimeField(null=True)

    meta = {"collection": "workflow_runs",
            "indexes": [{"fields": ["username", "-created_at"]}, {"fields": ["status", "heartbeat_at"]},
                        {"fields": ["workflow_id"]}]}


class ChatflowTurn(me.EmbeddedDocument):
    message_id = me.StringField(required=True)
    user_message = me.StringField()
    reply = me.StringField()
    run_id = me.StringField()
    status = me.StringField()  # a TurnStatus
    error = me.StringField(null=True)
    created_at = me.DateTimeField(default=utcnow)


class Chatflow(Document):
    chatflow_id = me.StringField(required=True, unique=True)
    workflow_id = me.StringField(required=True)
    username = me.StringField(required=True)
    chatflow_name = me.StringField(default="")
    turns = me.EmbeddedDocumentListField(ChatflowTurn)
    is_delete = me.BooleanField(default=False)
    deleted_at = me.DateTimeField(null=True)
    trashed_with = me.StringField(null=True)  # "workflow:{id}": in the trash with its workflow, restored with it
    created_at = me.DateTimeField(default=utcnow)
    last_modify_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "chatflows",
            "indexes": [{"fields": ["workflow_id"]}, {"fields": ["username", "is_delete", "-last_modify_at"]}]}

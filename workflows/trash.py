"""The trash of workflows: a delete hides the workflow (`is_delete` + `deleted_at`) and sends its chatflows to the
trash with it (`trashed_with`); a restore brings them back together, a purge (now, or by the nightly cleanup after
TRASH_RETENTION_DAYS) removes the workflow, its chatflows, its runs and their events."""

from datetime import datetime

from accounts.services import audit_log_record
from layra.errors import NotFound
from layra.redis import redis_client

from .documents import Chatflow, Workflow, WorkflowRun, utcnow
from .events import events_key
from .selectors import workflow_get

WORKFLOW_MARK = "workflow:"


def _mark(workflow_id: str) -> str:
    return WORKFLOW_MARK + workflow_id


def workflow_trash(*, user, workflow_id: str) -> None:
    wf = workflow_get(user=user, workflow_id=workflow_id)
    now = utcnow()
    Workflow.objects(pk=wf.pk).update_one(set__is_delete=True, set__deleted_at=now, inc__version=1)
    Chatflow.objects(workflow_id=workflow_id, username=user.username, is_delete=False).update(
        set__is_delete=True, set__deleted_at=now, set__trashed_with=_mark(workflow_id))
    audit_log_record(user=user, action="workflow.delete", resource_type="workflow", resource_id=workflow_id,
                     details={"trash": True})


def _trashed(*, user, workflow_id: str) -> Workflow:
    wf = Workflow.objects(workflow_id=workflow_id, username=user.username, is_delete=True).first()
    if wf is None:
        raise NotFound("Workflow not found in the trash.")
    return wf


def workflow_restore(*, user, workflow_id: str) -> Workflow:
    """Bring a workflow back from the trash with the chatflows that went there with it."""
    wf = _trashed(user=user, workflow_id=workflow_id)
    Chatflow.objects(workflow_id=workflow_id, is_delete=True, trashed_with=_mark(workflow_id)).update(
        set__is_delete=False, set__deleted_at=None, set__trashed_with=None)
    Workflow.objects(pk=wf.pk).update_one(set__is_delete=False, set__deleted_at=None, inc__version=1)
    audit_log_record(user=user, action="workflow.restore", resource_type="workflow", resource_id=workflow_id)
    return workflow_get(user=user, workflow_id=workflow_id)


def workflow_purge(*, workflow_id: str) -> None:
    """Remove a workflow, its chatflows, its runs and their events (any owner). Safe to repeat."""
    run_ids = list(WorkflowRun.objects(workflow_id=workflow_id).scalar("run_id"))
    if run_ids:
        redis_client("task").delete(*[events_key(run_id) for run_id in run_ids])
    WorkflowRun.objects(workflow_id=workflow_id).delete()
    Chatflow.objects(workflow_id=workflow_id).delete()
    Workflow.objects(workflow_id=workflow_id).delete()


def workflow_purge_trashed(*, user, workflow_id: str) -> None:
    _trashed(user=user, workflow_id=workflow_id)
    workflow_purge(workflow_id=workflow_id)
    audit_log_record(user=user, action="workflow.purge", resource_type="workflow", resource_id=workflow_id)


def trash_items(*, user) -> list[dict]:
    rows = Workflow.objects(username=user.username, is_delete=True).only(
        "workflow_id", "workflow_name", "deleted_at", "last_modify_at")
    return [{"kind": "workflow", "id": wf.workflow_id, "name": wf.workflow_name,
             "deleted_at": wf.deleted_at or wf.last_modify_at} for wf in rows]


def trash_purge_expired(*, cutoff: datetime, dry_run: bool = False) -> int:
    """Workflows trashed at or before the cutoff (ones trashed before `deleted_at` existed: last changed before)."""
    ids = [wf.workflow_id for wf in Workflow.objects(is_delete=True).only("workflow_id", "deleted_at",
                                                                          "last_modify_at")
           if (wf.deleted_at or wf.last_modify_at) <= cutoff]
    if not dry_run:
        for workflow_id in ids:
            workflow_purge(workflow_id=workflow_id)
    return len(ids)

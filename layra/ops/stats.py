"""Ingestion statistics for /metrics and the admin."""

from django.db.models import Count, Sum

from knowledge.models import IngestionJob


def ingestion_job_stats() -> dict:
    """{"states": {state: count} (every state, zeros included), "pages_done": pages of completed jobs}."""
    states = {state: 0 for state in IngestionJob.State.values}
    for row in IngestionJob.objects.values("state").annotate(n=Count("pk")):
        states[row["state"]] = row["n"]
    pages = IngestionJob.objects.filter(state=IngestionJob.State.COMPLETED).aggregate(p=Sum("pages_done"))["p"]
    return {"states": states, "pages_done": int(pages or 0)}

"""Ingestion statistics for /metrics and the admin."""

from django.db.models import Count, Sum
from prometheus_client.core import GaugeMetricFamily

from knowledge.models import IngestionJob


def ingestion_job_stats() -> dict:
    """{"states": {state: count} (every state, zeros included), "pages_done": pages of completed jobs}."""
    states = {state: 0 for state in IngestionJob.State.values}
    for row in IngestionJob.objects.values("state").annotate(n=Count("pk")):
        states[row["state"]] = row["n"]
    pages = IngestionJob.objects.filter(state=IngestionJob.State.COMPLETED).aggregate(p=Sum("pages_done"))["p"]
    return {"states": states, "pages_done": int(pages or 0)}


def ingestion_job_gauges() -> list[GaugeMetricFamily]:
    """/metrics: ingestion jobs by state and pages ingested (read at scrape time, whichever worker did the work)."""
    stats = ingestion_job_stats()
    states = GaugeMetricFamily("layra_ingestion_jobs", "Ingestion jobs by state.", labels=["state"])
    for state, count in sorted(stats["states"].items()):
        states.add_metric([state], count)
    pages = GaugeMetricFamily("layra_ingestion_pages", "Pages ingested by completed jobs.", value=stats["pages_done"])
    return [states, pages]

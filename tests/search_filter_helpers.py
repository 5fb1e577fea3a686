"""A corpus for search-filter tests: two KBs, one file whose pages fill every top-k, two quiet ones."""

from datetime import UTC, datetime

from knowledge.documents import File
from knowledge.services import knowledge_base_create
from tests.knowledge_helpers import index_pages

LOUD = [f"Volcano eruption {i}: lava flows from the crater, ash falls." for i in range(6)]
QUERY = "volcano eruption lava crater ash"
QUIET = ["Annual report: a volcano is mentioned once among budget figures."]
OTHER = ["Minutes of the garden committee: roses and tulips."]


def at(year: int) -> datetime:
    return datetime(year, 6, 1, tzinfo=UTC)


def filter_corpus(user, settings) -> dict:
    """Two KBs: `loud.pdf` (KB 1, uploaded 2024) whose six pages all beat the others for QUERY;
    `Annual-REPORT.pdf` (KB 2, 2025) and `report-notes.pdf` (KB 1, 2026) with one matching page each."""
    settings.SEARCH_FUSION_DEPTH = 2  # each side proposes few pages: a filter applied after top-k would find none
    settings.SEARCH_CANDIDATES_PER_TOKEN = 2
    kb1, kb2 = knowledge_base_create(user=user, name="one"), knowledge_base_create(user=user, name="two")
    ids = {
        "loud": index_pages(user=user, knowledge_base_id=kb1.knowledge_base_id, texts=LOUD, filename="loud.pdf"),
        "annual": index_pages(user=user, knowledge_base_id=kb2.knowledge_base_id, texts=QUIET,
                              filename="Annual-REPORT.pdf"),
        "notes": index_pages(user=user, knowledge_base_id=kb1.knowledge_base_id, texts=QUIET + OTHER,
                             filename="report-notes.pdf"),
    }
    for key, year in (("loud", 2024), ("annual", 2025), ("notes", 2026)):
        File.objects(file_id=ids[key]).update_one(set__created_at=at(year))
    return {"kbs": [kb1.knowledge_base_id, kb2.knowledge_base_id], **ids}

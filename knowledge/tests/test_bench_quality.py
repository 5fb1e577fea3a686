"""bench_quality end to end on a slice of the labelled set (the whole set runs by hand): real ingestion, every
mode, the fusion sweep and the latency figures."""

import json
import shutil

import pytest
from django.core.management import call_command

from knowledge.management.commands.bench_quality import DEFAULT_DATA, ranking_metrics


def test_ranking_metrics():
    relevant = {("a.pdf", 3)}
    assert ranking_metrics([("a.pdf", 3), ("a.pdf", 1)], relevant, 5) == {"recall": 1.0, "mrr": 1.0, "ndcg": 1.0}
    second = ranking_metrics([("a.pdf", 1), ("a.pdf", 3)], relevant, 5)
    assert second["mrr"] == 0.5 and second["recall"] == 1.0 and 0.6 < second["ndcg"] < 0.64
    assert ranking_metrics([("b.pdf", 3)], relevant, 5) == {"recall": 0.0, "mrr": 0.0, "ndcg": 0.0}


@pytest.mark.django_db(transaction=True)
def test_bench_quality_on_one_manual(tmp_path, settings, capsys):
    settings.SEARCH_STRONG_AFTER_WRITE_S = 0
    doc = "shared-mime-info-spec.pdf"
    shutil.copy(DEFAULT_DATA / doc, tmp_path / doc)
    questions = [q for q in json.loads((DEFAULT_DATA / "questions.json").read_text()) if q["doc"] == doc][:6]
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    call_command("bench_quality", "--configured-stores", "--data", str(tmp_path), "--json")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["pages"] == 17 and report["questions"] == 6
    for mode in ("dense", "lexical", "hybrid"):
        figures = report[mode]["all"]
        assert figures["n"] == 6 and all(0 <= figures[m] <= 1 for m in ("recall@5", "mrr@5", "ndcg@5"))
        assert report[mode]["p50_ms"] > 0
    assert report["lexical"]["all"]["recall@5"] > 0.5  # questions written from these pages: BM25 finds most
    assert "convex lexical=0.5" in report["fusion_sweep"]["all_questions"]
    assert report["latency_kb"]["pages"] == 17 and report["latency_kb"]["hybrid_p50_ms"] > 0
    from knowledge.documents import KnowledgeBase

    assert not KnowledgeBase.objects(knowledge_base_name__startswith="bench-quality").count()  # cleaned up

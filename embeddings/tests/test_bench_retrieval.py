"""bench_retrieval runs end to end on a tiny corpus (the full size runs by hand) and reports every figure."""

import json

from django.core.management import call_command


def test_bench_retrieval_tiny_corpus_reports_recall_and_latencies(capsys, settings):
    # On the test stack's Milvus standalone (the default stack's engine), as `make run` has it.
    call_command("bench_retrieval", "--pages", "24", "--vectors-per-page", "30", "--queries", "4",
                 "--warmup-queries", "2", "--layra-queries", "2", "--uri", settings.MILVUS_URI, "--json")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["pages"] == 24 and report["vectors_per_page"] == 30 and report["queries"] == 4
    assert report["layra_queries"] == 2 and report["milvus"].startswith("v2.3")
    for key in ("exact_p50_ms", "layra_p50_ms", "ours_p50_ms", "ours_p95_ms", "ours_new_process_p50_ms",
                "ours_no_cache_p50_ms", "speedup_vs_layra"):
        assert report[key] > 0, key
    # Every candidate is re-ranked exactly, so on a corpus this small ours finds the true top 5.
    assert report["ours_recall_at_5"] == 1.0
    assert report["ours_new_process_recall_at_5"] == 1.0 and report["ours_no_cache_recall_at_5"] == 1.0
    assert report["redis_tier_bytes_per_page_fp16"] == 30 * 128 * 2

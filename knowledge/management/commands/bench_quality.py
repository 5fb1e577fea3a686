"""Retrieval quality on real documents: recall@k, MRR@k and nDCG@k of dense-only, lexical-only and hybrid.

The labelled set lives in tests/data/quality/ (real PDF manuals from Debian packages, questions written from
their pages; see its README). The documents go through the real ingestion pipeline (render, text layer, embed,
index) into one knowledge base, then every question is searched in each mode; each question is asked once per
mode, so no answer comes from the search cache. Latency is search() in this process (no HTTP), one client,
sequential; `latency_kb` repeats the hybrid timing on a ~50-page knowledge base (the two shortest documents).

With no `--configured-stores` it starts a private stack first (as the tests do) and runs itself inside it, so it
works from a clean checkout with nothing running.
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_DATA = Path(settings.BASE_DIR) / "tests" / "data" / "quality"
MODES = ("dense", "lexical", "hybrid")


def ranking_metrics(ranked: list[tuple[str, int]], relevant: set[tuple[str, int]], k: int) -> dict[str, float]:
    """Binary relevance: recall@k (share of relevant pages in the top k; one labelled page makes it a hit rate),
    MRR@k (1/rank of the first relevant page) and nDCG@k."""
    top = ranked[:k]
    hits = [1.0 if page in relevant else 0.0 for page in top]
    first = next((i for i, h in enumerate(hits) if h), None)
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return {"recall": sum(hits) / min(len(relevant), k), "mrr": 0.0 if first is None else 1 / (first + 1),
            "ndcg": dcg / ideal if ideal else 0.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Retrieval quality (recall/MRR/nDCG@k) and latency of dense, lexical and hybrid search on real manuals."

    def add_arguments(self, parser):
        parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with questions.json and the PDFs")
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument("--configured-stores", action="store_true",
                            help="use the stores the settings name (default: a private stack for the run)")
        parser.add_argument("--json", action="store_true", help="print only the JSON result")

    def handle(self, *args, **options):
        if not options["configured_stores"]:
            return self._in_private_stack(options)
        data = Path(options["data"])
        questions = json.loads((data / "questions.json").read_text())
        if not questions:
            raise CommandError(f"No questions in {data / 'questions.json'}.")
        from django.contrib.auth import get_user_model

        from layra.storage import ensure_bucket

        ensure_bucket()  # a fresh private stack's S3 has none
        user = get_user_model().objects.create_user(f"bench-quality-{int(time.time() * 1000)}", None,
                                                    os.urandom(16).hex())
        try:
            result = self._run(user, data, questions, options)
        finally:
            self._clean(user)
        self.stdout.write(json.dumps(result))

    def _in_private_stack(self, options):
        from layra import embedded

        with embedded.private_run("layra-bench-quality-") as (_services, run_dir, env):
            env.update({"DATABASE_URL": f"sqlite:///{run_dir / 'bench.sqlite3'}", "CELERY_TASK_ALWAYS_EAGER": "true",
                        "DEBUG": "false", "SECURE_SSL_REDIRECT": "false", "LOG_LEVEL": "WARNING",
                        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DJANGO_SETTINGS_MODULE": "layra.settings"})
            env.pop("CELERY_BROKER_URL", None)
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            # Throwaway keys of the run's own (settings refuse to load without them).
            subprocess.run([sys.executable, "-m", "layra.keyfiles", env["DATA_DIR"]], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
            subprocess.run([*manage, "ensure_indexes", "-v", "0"], env=env, check=True)
            args = [*manage, "bench_quality", "--configured-stores", "--data", options["data"],
                    "--top-k", str(options["top_k"])] + (["--json"] if options["json"] else [])
            code = subprocess.run(args, env=env).returncode
        if code:
            raise CommandError(f"bench_quality failed (exit {code})")

    def log(self, message: str) -> None:
        self.stderr.write(message)

    def _ingest(self, user, name: str, pdfs: list[Path]) -> tuple[str, int]:
        from django.core.files.uploadedfile import SimpleUploadedFile

        from knowledge.documents import File, FileStatus
        from knowledge.services import files_upload, knowledge_base_create

        kb = knowledge_base_create(user=user, name=name)
        started = time.perf_counter()
        uploads = [SimpleUploadedFile(p.name, p.read_bytes(), content_type="application/pdf") for p in pdfs]
        files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=uploads)  # eager tasks
        files = list(File.objects(knowledge_db_id=kb.knowledge_base_id))
        failed = [f.filename for f in files if f.status != FileStatus.COMPLETED]
        if failed:
            raise CommandError(f"Ingestion failed for {failed}")
        pages = sum(f.page_count for f in files)
        self.log(f"{name}: {len(files)} files, {pages} pages in {time.perf_counter() - started:.1f} s")
        return kb.knowledge_base_id, pages

    def _run(self, user, data: Path, questions: list[dict], options) -> dict:
        from knowledge.search import search

        k = options["top_k"]
        docs = sorted({q["doc"] for q in questions})
        kb_id, pages = self._ingest(user, "bench-quality", [data / d for d in docs])
        result: dict = {"documents": docs, "pages": pages, "questions": len(questions), "top_k": k,
                        "embedder": settings.EMBEDDER, "milvus": settings.MILVUS_URI.split("://")[0],
                        "fusion": {"dense_weight": settings.SEARCH_DENSE_WEIGHT,
                                   "lexical_weight": settings.SEARCH_LEXICAL_WEIGHT, "rrf_k": settings.SEARCH_RRF_K,
                                   "depth": settings.SEARCH_FUSION_DEPTH}}
        for mode in MODES:
            per_kind: dict[str, list[dict]] = {}
            times = []
            for q in questions:
                relevant = {(q["doc"], int(q["page"]))} | {(q["doc"], int(p)) for p in q.get("also", [])}
                started = time.perf_counter()
                hits = search(user=user, knowledge_base_ids=[kb_id], query=q["question"], top_k=k, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
                ranked = [(h["filename"], int(h["page_number"])) for h in hits]
                metrics = ranking_metrics(ranked, relevant, k)
                per_kind.setdefault("all", []).append(metrics)
                per_kind.setdefault(q.get("kind", "other"), []).append(metrics)
            result[mode] = {
                kind: {f"{name}@{k}": round(statistics.fmean(m[name] for m in rows), 4)
                       for name in ("recall", "mrr", "ndcg")} | {"n": len(rows)}
                for kind, rows in per_kind.items()
            } | {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1)}
            self.log(f"{mode}: {result[mode]['all']}")
        result["fusion_sweep"] = self._sweep(user, kb_id, questions, k)
        result["latency_kb"] = self._latency_kb(user, data, questions)
        return result

    def _sweep(self, user, kb_id: str, questions: list[dict], k: int) -> dict:
        """Every fusion setting on the same two side lists per question; then leave-one-document-out: the best
        setting on the other documents' questions, scored on the held-out document's (how a setting chosen on one
        corpus does on another)."""
        from embeddings.embedders import embedder_spec
        from embeddings.fusion import FusionWeights
        from embeddings.hybrid import fuse, fusion_depth, pages_search
        from embeddings.lexical import LexicalHit
        from embeddings.query import query_vectors_embed
        from knowledge.selectors import pages_get

        spec = embedder_spec()
        depth = fusion_depth(top_k=k)
        configs = {f"rrf k=60 dense:lexical=1:{w}": {"method": "rrf", "weights": FusionWeights(1, w, 60)}
                   for w in (0.5, 1, 1.5, 2, 3)}
        configs |= {f"convex lexical={a}": {"method": "convex", "lexical_weight": a}
                    for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
        scores: dict[str, list[tuple[str, dict]]] = {name: [] for name in configs}
        for q in questions:
            common = {"knowledge_base_ids": [kb_id], "query": q["question"], "embedder": spec.name, "dim": spec.dim,
                      "top_k": depth}
            dense = pages_search(**common, query_vectors=query_vectors_embed(text=q["question"]), mode="dense")
            lexical = pages_search(**common, query_vectors=None, mode="lexical")
            pages = {h["image_id"]: h for h in dense + lexical}
            names = {i: f.filename for i, (f, _p) in pages_get(user=user, image_ids=list(pages)).items()}
            relevant = {(q["doc"], int(q["page"]))} | {(q["doc"], int(p)) for p in q.get("also", [])}
            lexical_hits = [LexicalHit(knowledge_base_id=h["knowledge_base_id"], file_id=h["file_id"],
                                       image_id=h["image_id"], page_number=h["page_number"], score=h["score"])
                            for h in lexical]
            for name, config in configs.items():
                fused = fuse(dense=dense, lexical=lexical_hits, **config)
                ranked = sorted(fused, key=lambda i: -fused[i])[:k]
                metrics = ranking_metrics([(names.get(i), pages[i]["page_number"]) for i in ranked], relevant, k)
                scores[name].append((q["doc"], metrics))

        def mean(rows: list[dict], metric: str) -> float:
            return round(statistics.fmean(r[metric] for r in rows), 4) if rows else 0.0

        sweep = {name: {f"{m}@{k}": mean([r for _, r in rows], m) for m in ("recall", "mrr", "ndcg")}
                 for name, rows in scores.items()}
        held_out: dict[str, list[dict]] = {"rrf": [], "convex": []}
        chosen: dict[str, dict[str, str]] = {"rrf": {}, "convex": {}}
        for doc in sorted({q["doc"] for q in questions}):
            for family in held_out:
                names = [n for n in configs if configs[n]["method"] == family]
                best = max(names, key=lambda n: mean([r for d, r in scores[n] if d != doc], "mrr"))
                chosen[family][doc] = best
                held_out[family].extend(r for d, r in scores[best] if d == doc)
        return {"all_questions": sweep, "leave_one_document_out": {
            family: {f"{m}@{k}": mean(rows, m) for m in ("recall", "mrr", "ndcg")} | {"chosen": chosen[family]}
            for family, rows in held_out.items()}}

    def _latency_kb(self, user, data: Path, questions: list[dict]) -> dict:
        """Hybrid search timing on a knowledge base of about 50 pages (the two shortest documents)."""
        import pypdfium2

        from knowledge.search import search

        sizes = sorted((len(pypdfium2.PdfDocument(str(data / d))), d) for d in {q["doc"] for q in questions})
        chosen = [d for _, d in sizes[:2]]
        kb_id, pages = self._ingest(user, "bench-quality-small", [data / d for d in chosen])
        time.sleep(settings.SEARCH_STRONG_AFTER_WRITE_S + 1)  # a KB at rest (no Strong reads), as users mostly meet it
        times = []
        for q in questions:  # every question once: distinct queries, so the result cache never answers
            started = time.perf_counter()
            search(user=user, knowledge_base_ids=[kb_id], query=q["question"] + " (small)", top_k=5)
            times.append((time.perf_counter() - started) * 1000)
        return {"documents": chosen, "pages": pages, "queries": len(times),
                "hybrid_p50_ms": round(statistics.median(times), 1), "hybrid_p95_ms": round(percentile(times, 95), 1)}

    def _clean(self, user) -> None:
        from knowledge.documents import KnowledgeBase
        from knowledge.purge import knowledge_base_purge

        for kb in KnowledgeBase.objects(username=user.username):
            KnowledgeBase.objects(knowledge_base_id=kb.knowledge_base_id).update_one(set__is_delete=True)
            knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)  # purges only what is marked deleted
        user.delete()

"""Retrieval benchmark (the dense side): exact MaxSim vs the original LAYRA recipe vs this product's search.

The synthetic corpus (clustered, L2-normalised vectors) is one KB in a collection of the product's schema
(partition key knowledge_base_id). With no `--uri` (and no BENCH_MILVUS_URI) it runs on the default stack's
engine: a private Milvus standalone server with its data under DATA_DIR/bench-milvus, so the corpus is reused
across runs; vectors are regenerated from the seed.
"""

import json
import statistics
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand
from pymilvus import MilvusClient

from embeddings.collections import dense_collection_create
from embeddings.page_cache import PageVectorCache
from embeddings.retrieval import maxsim_scores, search_collection
from embeddings.services import page_scope

DIM = 128
KB = "bench-kb"


def corpus_page(rng_seed: int, page: int, *, centers: np.ndarray, vectors_per_page: int) -> np.ndarray:
    """One page's vectors: a few topics (cluster centres) per page plus noise, L2-normalised."""
    rng = np.random.default_rng([rng_seed, page])
    topics = rng.choice(len(centers), size=6, replace=False)
    assign = rng.choice(topics, size=vectors_per_page)
    noise = rng.standard_normal((vectors_per_page, DIM)).astype(np.float32) / np.sqrt(DIM)
    matrix = centers[assign] + 0.9 * noise
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def corpus_centers(seed: int, n: int = 128) -> np.ndarray:
    rng = np.random.default_rng([seed, 10**9])
    centers = rng.standard_normal((n, DIM)).astype(np.float32)
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Command(BaseCommand):
    help = "Benchmark page retrieval (exact MaxSim, the original LAYRA recipe, ours) on a synthetic corpus."

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=1000)
        parser.add_argument("--vectors-per-page", type=int, default=750)
        parser.add_argument("--query-tokens", type=int, default=20)
        parser.add_argument("--queries", type=int, default=10)
        parser.add_argument("--warmup-queries", type=int, default=30,
                            help="other queries run first, so the page-vector cache is in a steady state")
        parser.add_argument("--layra-queries", type=int, default=None,
                            help="run the original recipe on only the first N queries (it costs one Milvus "
                                 "query per candidate page; on Milvus Lite that is minutes per query)")
        parser.add_argument("--no-cache-queries", type=int, default=None,
                            help="run the no-cache variant on only the first N queries (it reads every "
                                 "candidate's rows from Milvus; slow on Milvus Lite)")
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--uri", default=None, help="Milvus URI for the corpus (default BENCH_MILVUS_URI, else "
                                                        "a private standalone server, the default stack's engine)")
        parser.add_argument("--rebuild", action="store_true")
        parser.add_argument("--json", action="store_true", help="print only the JSON result")

    def log(self, options, message):
        if not options["json"]:
            self.stderr.write(message)

    def handle(self, *args, **options):
        uri = options["uri"] or settings.BENCH_MILVUS_URI
        server = None
        if not uri:
            from layra import embedded

            port = embedded.free_port()
            data = settings.DATA_DIR / "bench-milvus"
            server = embedded.milvus_standalone(port, data, data / "logs").start(timeout=180)
            uri = f"http://127.0.0.1:{port}"
        try:
            self.run(uri, options)
        finally:
            if server is not None:
                server.stop()

    def run(self, uri: str, options) -> None:
        pages, vpp, seed = options["pages"], options["vectors_per_page"], options["seed"]
        if "://" not in uri:
            from pathlib import Path

            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(uri=uri)
        name = f"bench_p{pages}_v{vpp}_s{seed}"
        centers = corpus_centers(seed)
        build_s = self.corpus_ensure(client, name, pages, vpp, seed, centers, options)

        all_pages = [corpus_page(seed, p, centers=centers, vectors_per_page=vpp) for p in range(pages)]
        flat = np.concatenate(all_pages)
        owners_starts = np.arange(pages) * vpp
        image_ids = [f"page-{p}" for p in range(pages)]

        rng = np.random.default_rng([seed, 42])
        total = options["warmup_queries"] + options["queries"]
        queries = []
        for _ in range(total):
            target = all_pages[int(rng.integers(pages))]
            rows = target[rng.choice(vpp, size=options["query_tokens"], replace=False)]
            q = rows + 0.9 * rng.standard_normal(rows.shape).astype(np.float32) / np.sqrt(DIM)
            queries.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
        warmup, evaluation = queries[:options["warmup_queries"]], queries[options["warmup_queries"]:]
        top_k = options["top_k"]

        # (a) exact brute force: the ground truth
        truth, exact_ms = [], []
        for q in evaluation:
            t0 = time.perf_counter()
            scores = np.maximum.reduceat(flat @ q.T, owners_starts, axis=0).sum(axis=1)
            truth.append([image_ids[i] for i in np.argsort(-scores)[:top_k]])
            exact_ms.append((time.perf_counter() - t0) * 1000)

        # (b) the original recipe: per-vector ANN (limit 50), then one Milvus query per candidate page
        layra_ms, layra_found = [], []
        for q in evaluation[:options["layra_queries"] or len(evaluation)]:
            t0 = time.perf_counter()
            layra_found.append(self.layra_search(client, name, q, top_k))
            layra_ms.append((time.perf_counter() - t0) * 1000)
            self.log(options, f"layra query {len(layra_ms)}: {layra_ms[-1]:.0f} ms")
        self.log(options, f"layra p50 {statistics.median(layra_ms):.0f} ms")

        # (c) ours. No cache at all: every re-ranked page fetched from Milvus in batched queries.
        max_bytes = settings.SEARCH_PAGE_CACHE_MB * 1024 * 1024
        cold_ms, cold_found = self.ours(client, name, evaluation[:options["no_cache_queries"] or len(evaluation)],
                                        top_k, None, None)
        # The product's path: the Redis page tier written through at indexing time, a new process (empty LRU).
        redis, stop_redis = self.redis_ensure(options)
        try:
            from embeddings.page_cache import pages_store

            scope = page_scope(collection=name, knowledge_base_id=KB)
            for first in range(0, pages, 50):  # one pipeline per file of 50 pages
                pages_store(name=scope, file_id=f"file-{first // 50}", redis=redis,
                            pages=[(image_ids[p], all_pages[p]) for p in range(first, min(first + 50, pages))])
            cache = PageVectorCache(max_bytes=max_bytes)
            ours_ms, ours_found = self.ours(client, name, evaluation, top_k, cache, redis)
            # Steady state of a busy process: the LRU warmed by other queries first.
            warm = PageVectorCache(max_bytes=max_bytes)
            self.ours(client, name, warmup, top_k, warm, redis)
            warm_ms, warm_found = self.ours(client, name, evaluation, top_k, warm, redis)
            for key in redis.scan_iter(match=f"pagevec:{scope}:*", count=1000):
                redis.delete(key)
        finally:
            stop_redis()

        def recall(found):
            return float(np.mean([len(set(f[:top_k]) & set(t)) / top_k for f, t in zip(found, truth, strict=False)]))

        # "ours" is a running web process: its LRU warmed by other queries (the state users meet). A process
        # just started reads pages from the Redis tier; with no cache at all, from Milvus.
        ours_p50 = statistics.median(warm_ms)
        layra_p50 = statistics.median(layra_ms)
        result = {
            "pages": pages,
            "vectors_per_page": vpp,
            "dim": DIM,
            "query_tokens": options["query_tokens"],
            "queries": len(evaluation),
            "top_k": top_k,
            "milvus": "lite-file" if "://" not in uri else f"{client.get_server_version()} server",
            "corpus_build_s": build_s,
            "exact_p50_ms": round(statistics.median(exact_ms), 1),
            "layra_p50_ms": round(layra_p50, 1),
            "layra_p95_ms": round(percentile(layra_ms, 95), 1),
            "layra_recall_at_5": round(recall(layra_found), 4),
            "layra_queries": len(layra_ms),
            "ours_p50_ms": round(ours_p50, 1),
            "ours_p95_ms": round(percentile(warm_ms, 95), 1),
            "ours_recall_at_5": round(recall(warm_found), 4),
            "ours_new_process_p50_ms": round(statistics.median(ours_ms), 1),
            "ours_new_process_p95_ms": round(percentile(ours_ms, 95), 1),
            "ours_new_process_recall_at_5": round(recall(ours_found), 4),
            "ours_no_cache_p50_ms": round(statistics.median(cold_ms), 1),
            "ours_no_cache_p95_ms": round(percentile(cold_ms, 95), 1),
            "ours_no_cache_recall_at_5": round(recall(cold_found), 4),
            "ours_no_cache_queries": len(cold_ms),
            "speedup_vs_layra": round(layra_p50 / ours_p50, 1),
            "new_process_speedup_vs_layra": round(layra_p50 / statistics.median(ours_ms), 1),
            "no_cache_speedup_vs_layra": round(layra_p50 / statistics.median(cold_ms), 1),
            "milvus_bytes_per_page": vpp * (DIM * 4 + 8 + 8 + 2 * 36),
            "redis_tier_bytes_per_page_fp16": vpp * DIM * 2,
            "process_cache_bytes_per_page_fp32": vpp * DIM * 4,
            "process_cache_mb_after_run": round(warm.bytes / 2**20, 1),
            "candidates_per_token": settings.SEARCH_CANDIDATES_PER_TOKEN,
            "ef": settings.MILVUS_SEARCH_EF,
        }
        self.stdout.write(json.dumps(result))

    def redis_ensure(self, options):
        """A binary client on the cache db; a private redis-server when none answers at REDIS_URL."""
        import redis as redis_lib

        client = redis_lib.Redis.from_url(settings.REDIS_URL, db=settings.REDIS_DBS["cache"], socket_timeout=30)
        try:
            client.ping()
            return client, lambda: None
        except redis_lib.RedisError:
            pass
        import tempfile
        from pathlib import Path

        from layra import embedded

        port = embedded.free_port()
        server = embedded.redis_server(port, Path(tempfile.mkdtemp(prefix="bench-redis-")))
        server.start()
        self.log(options, f"started a private redis on port {port}")
        return redis_lib.Redis(host="127.0.0.1", port=port, socket_timeout=30), server.stop

    def ours(self, client, name, queries, top_k, cache, redis):
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = search_collection(client=client, name=name, query_vectors=q, top_k=top_k, knowledge_base_ids=[KB],
                                     generations={}, cache=cache, redis=redis, use_redis=redis is not None)
            times.append((time.perf_counter() - t0) * 1000)
            found.append([h["image_id"] for h in hits])
        return times, found

    def layra_search(self, client, name, q, top_k):
        hits = client.search(collection_name=name, data=[v.tolist() for v in q], limit=50,
                             output_fields=["image_id"], search_params={"metric_type": "IP", "params": {}})
        image_ids = list(dict.fromkeys(h["entity"]["image_id"] for per in hits for h in per))
        scores = []
        for image_id in image_ids:
            rows = client.query(collection_name=name, filter=f'image_id in ["{image_id}"]',
                                output_fields=["vector"], limit=16384)
            vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32)
            scores.append(float(maxsim_scores(query_vectors=q, pages=[vectors])[0]))
        order = np.argsort(-np.asarray(scores))[:top_k]
        return [image_ids[i] for i in order]

    def corpus_ensure(self, client, name, pages, vpp, seed, centers, options) -> float:
        expected = pages * vpp
        if client.has_collection(collection_name=name) and not options["rebuild"]:
            client.load_collection(collection_name=name)
            count = client.query(collection_name=name, filter="", output_fields=["count(*)"],
                                 consistency_level="Strong")[0]["count(*)"]
            if count == expected:
                self.log(options, f"reusing corpus {name} ({count} vectors)")
                self.index_wait(client, name, expected, options)
                return 0.0
        if client.has_collection(collection_name=name):
            client.drop_collection(collection_name=name)
        t0 = time.perf_counter()
        dense_collection_create(client=client, name=name, dim=DIM, embedder="bench")
        rows = []
        for p in range(pages):
            file_id = f"file-{p // 50}"
            for v in corpus_page(seed, p, centers=centers, vectors_per_page=vpp):
                rows.append({"vector": v.tolist(), "image_id": f"page-{p}", "page_number": p % 50 + 1,
                             "file_id": file_id, "knowledge_base_id": KB, "username": "bench"})
            if len(rows) >= 15000 or p == pages - 1:
                client.insert(collection_name=name, data=rows)
                rows = []
                self.log(options, f"inserted {p + 1}/{pages} pages")
        client.flush(collection_name=name)
        client.load_collection(collection_name=name)
        self.index_wait(client, name, expected, options)
        return round(time.perf_counter() - t0, 1)

    def index_wait(self, client, name, expected: int, options, timeout: float = 1800) -> None:
        """Until the HNSW index covers every row: a segment not indexed yet is searched by brute force, which
        is not what a KB at rest costs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = client.describe_index(collection_name=name, index_name="vector")
            indexed = int(info.get("indexed_rows", expected))
            if indexed >= expected and not int(info.get("pending_index_rows", 0) or 0):
                return
            self.log(options, f"index: {indexed}/{expected} rows")
            time.sleep(5)

"""Search latency as a user meets it: through the HTTP API of a running server (`make run`, say).

    python manage.py bench_search_http --url http://127.0.0.1:8000 --username demo \
        --password-file data/secrets/demo_password

Signs in, makes a knowledge base, uploads the labelled set's two shortest manuals (about 50 pages), waits for
their ingestion, then asks every question once (distinct queries: the result cache never answers), one client,
sequentially; then `--clients N` threads at once (the server's per-user budgets count searches: start it with
`RATE_LIMITS=search=100000/60 RATE_LIMIT_WRITE=100000/60` for a load run, or the threads meet 429s, reported
under "errors"). Prints the
client's and the server's own (`Server-Timing: app;dur`) p50/p95 in JSON, and deletes the knowledge base.
"""

import json
import re
import statistics
import threading
import time
from pathlib import Path

import httpx
import pypdfium2
from django.core.management.base import BaseCommand, CommandError

from knowledge.management.commands.bench_quality import DEFAULT_DATA, percentile

_DUR = re.compile(r"app;dur=([\d.]+)")


class Command(BaseCommand):
    help = "Search latency through the HTTP API of a running server, on a ~50-page knowledge base."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default=None)
        parser.add_argument("--password-file", default=None)
        parser.add_argument("--data", default=str(DEFAULT_DATA))
        parser.add_argument("--clients", type=int, default=4, help="threads for the under-load run (0: skip)")

    def handle(self, *args, **options):
        password = options["password"] or (Path(options["password_file"]).read_text().strip()
                                           if options["password_file"] else None)
        if not password:
            raise CommandError("--password or --password-file is required.")
        data = Path(options["data"])
        questions = json.loads((data / "questions.json").read_text())
        docs = sorted({q["doc"] for q in questions}, key=lambda d: len(pypdfium2.PdfDocument(str(data / d))))[:2]
        with httpx.Client(base_url=options["url"].rstrip("/") + "/api/v1", timeout=120) as client:
            token = client.post("/auth/login/", json={"username": options["username"], "password": password})
            if token.status_code != 200:
                raise CommandError(f"login failed: {token.status_code} {token.text[:200]}")
            client.headers["Authorization"] = f"Bearer {token.json()['access']}"
            kb = client.post("/knowledge-bases/", json={"knowledge_base_name": "bench-search-http"}).json()
            kb_id = kb["knowledge_base_id"]
            try:
                pages = self._ingest(client, kb_id, [data / d for d in docs])
                time.sleep(35)  # past SEARCH_STRONG_AFTER_WRITE_S: a KB at rest, as users mostly meet it
                single = self._ask(client, kb_id, [q["question"] for q in questions])
                loaded = self._under_load(client, kb_id, questions, options["clients"]) if options["clients"] else None
            finally:
                client.delete(f"/knowledge-bases/{kb_id}/")
        self.stdout.write(json.dumps({"url": options["url"], "documents": docs, "pages": pages, "sequential": single,
                                      "under_load": loaded}))

    def _ingest(self, client: httpx.Client, kb_id: str, pdfs: list[Path]) -> int:
        files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in pdfs]
        items = client.post(f"/knowledge-bases/{kb_id}/files/", files=files).json()
        for item in items:
            deadline = time.monotonic() + 600
            while (state := client.get(f"/tasks/{item['task_id']}/").json().get("state")) not in (
                    "completed", "failed", "cancelled"):
                if time.monotonic() > deadline:
                    raise CommandError(f"ingestion of {item['filename']} did not finish")
                time.sleep(1)
            if state != "completed":
                raise CommandError(f"ingestion of {item['filename']}: {state}")
        return sum(f["page_count"] for f in client.get(f"/knowledge-bases/{kb_id}/files/").json()["results"])

    def _ask(self, client: httpx.Client, kb_id: str, queries: list[str]) -> dict:
        client_ms, server_ms = [], []
        for query in queries:
            started = time.perf_counter()
            response = client.post("/search/", json={"query": query, "knowledge_base_ids": [kb_id], "top_k": 5})
            client_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise CommandError(f"search: {response.status_code} {response.text[:200]}")
            if match := _DUR.search(response.headers.get("server-timing", "")):
                server_ms.append(float(match.group(1)))
        return {"queries": len(queries), "client_p50_ms": round(statistics.median(client_ms), 1),
                "client_p95_ms": round(percentile(client_ms, 95), 1),
                "server_p50_ms": round(statistics.median(server_ms), 1) if server_ms else None,
                "server_p95_ms": round(percentile(server_ms, 95), 1) if server_ms else None}

    def _under_load(self, client: httpx.Client, kb_id: str, questions: list[dict], clients: int) -> dict:
        results: list[dict] = [{} for _ in range(clients)]

        errors: list[str] = []

        def run(i: int) -> None:
            with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=120) as own:
                try:
                    results[i] = self._ask(own, kb_id, [f"{q['question']} ({i})" for q in questions])
                except CommandError as exc:  # a 429 (the per-user write budget) or a 5xx: reported, not hidden
                    errors.append(str(exc))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = [r for r in results if r]
        if not done:
            return {"clients": clients, "errors": errors}
        return {"clients": clients, "completed_clients": len(done), "errors": errors,
                "server_p50_ms": statistics.median(r["server_p50_ms"] for r in done if r["server_p50_ms"] is not None),
                "client_p50_ms": statistics.median(r["client_p50_ms"] for r in done),
                "client_p95_ms": max(r["client_p95_ms"] for r in done)}

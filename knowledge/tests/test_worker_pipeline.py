"""End to end through a real Celery worker: upload -> convert -> render -> embed -> index -> search."""

import time

import pytest

from knowledge import samples
from knowledge.documents import File, KnowledgeBase
from knowledge.models import IngestionJob
from knowledge.services import knowledge_base_create
from layra.storage import objects_delete
from tests.knowledge_helpers import assert_one_set_of_vectors, bucket_keys, file_vectors, uploaded, wait_job

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(client, kb_id, files):
    response = client.post(f"/api/v1/knowledge-bases/{kb_id}/files/", {"files": files}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_pdf_office_and_image_are_ingested_and_searchable(celery_worker, api_client, user):
    from knowledge.search import search

    kb = knowledge_base_create(user=user, name="E2E")
    body = _upload(api_client, kb.knowledge_base_id, [
        uploaded("spices.pdf", samples.make_pdf(["Zanzibar exports cloves and nutmeg every season",
                                                 "Quarterly revenue of the spice trade"])),
        uploaded("penguins.docx", samples.make_docx(["Emperor penguins huddle together through the polar winter"])),
        uploaded("chart.png", samples.make_png("a bar chart", (300, 200))),
    ])
    jobs = [wait_job(item["task_id"], worker=celery_worker, timeout=180) for item in body]
    assert [job.state for job in jobs] == ["completed"] * 3, [job.error for job in jobs]

    files = {f.filename: f for f in File.objects(knowledge_db_id=kb.knowledge_base_id)}
    assert [files[n].page_count for n in ("spices.pdf", "penguins.docx", "chart.png")] == [2, 1, 1]
    assert all(f.status == "completed" for f in files.values())
    for file in files.values():
        assert_one_set_of_vectors(file)
    kb.reload()
    assert kb.version == 1 + 3 and kb.embedder

    task = api_client.get(f"/api/v1/tasks/{body[0]['task_id']}/").json()
    assert (task["state"], task["processed"], task["total"], task["pages_done"]) == ("completed", 4, 4, 2)
    events = b"".join(api_client.get(f"/api/v1/tasks/{body[0]['task_id']}/events").streaming_content).decode()
    assert "event: progress" in events and "event: end" in events

    hits = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="emperor penguins in winter", top_k=3)
    assert hits[0]["file_id"] == files["penguins.docx"].file_id
    hits = search(user=user, knowledge_base_ids=[kb.knowledge_base_id], query="cloves and nutmeg from Zanzibar")
    assert hits[0]["file_id"] == files["spices.pdf"].file_id and hits[0]["page_number"] == 1
    image = api_client.get(f"/api/v1/files/{files['chart.png'].file_id}/pages/1/image")
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"


def test_killed_worker_mid_file_completes_once_with_no_duplicate_vectors(restartable_worker, api_client, user):
    kb = knowledge_base_create(user=user, name="Crash")
    pages = [f"Page {i}: notes about crash recovery and redelivery number {i}" for i in range(1, 13)]
    task_id = _upload(api_client, kb.knowledge_base_id, [uploaded("crash.pdf", samples.make_pdf(pages))])[0]["task_id"]
    job = wait_job(task_id, worker=restartable_worker, timeout=120,
                   states=("embedding", "indexing", "completed", "failed"))
    assert job.state in ("embedding", "indexing"), job.state  # mid-file: pages rendered, vectors not done
    restartable_worker.kill()
    assert IngestionJob.objects.get(task_id=task_id).state not in IngestionJob.TERMINAL
    restartable_worker.start()
    job = wait_job(task_id, worker=restartable_worker, timeout=180)
    assert job.state == "completed", job.error
    file = File.objects.get(task_id=task_id)
    assert file.status == "completed" and file.page_count == 12
    assert_one_set_of_vectors(file)


def _wait_gone(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("not purged in time")


def test_file_and_kb_deletion_leave_no_vectors_objects_or_records(celery_worker, api_client, user):
    from accounts.models import AuditLog
    from embeddings.lexical import lexical_index

    kb = knowledge_base_create(user=user, name="Delete")
    body = _upload(api_client, kb.knowledge_base_id, [uploaded("a.txt", b"alpha document"),
                                                      uploaded("b.txt", b"beta document")])
    for item in body:
        assert wait_job(item["task_id"], worker=celery_worker).state == "completed"
    first, second = (File.objects.get(file_id=item["file_id"]) for item in body)
    assert file_vectors(kb.knowledge_base_id, first.file_id)
    assert set(lexical_index().page_ids(knowledge_base_id=kb.knowledge_base_id).values()) == {
        first.file_id, second.file_id}  # each page's text layer is in the lexical index too

    assert api_client.delete(f"/api/v1/files/{first.file_id}/").status_code == 204  # to the trash
    assert api_client.get(f"/api/v1/files/{first.file_id}/").status_code == 404  # invisible at once
    assert file_vectors(kb.knowledge_base_id, first.file_id)  # kept until purged
    assert api_client.delete(f"/api/v1/trash/file/{first.file_id}/").status_code == 204
    _wait_gone(lambda: File.objects(file_id=first.file_id).count() == 0)
    assert file_vectors(kb.knowledge_base_id, first.file_id) == []
    assert bucket_keys(f"kb/{kb.knowledge_base_id}/{first.file_id}/") == []
    assert not IngestionJob.objects.filter(file_id=first.file_id).exists()
    assert file_vectors(kb.knowledge_base_id, second.file_id)  # the other file is untouched
    assert set(lexical_index().page_ids(knowledge_base_id=kb.knowledge_base_id).values()) == {second.file_id}
    assert AuditLog.objects.filter(action="file.delete", resource_id=first.file_id).exists()

    assert api_client.delete(f"/api/v1/knowledge-bases/{kb.knowledge_base_id}/").status_code == 204
    assert api_client.delete(f"/api/v1/trash/knowledge_base/{kb.knowledge_base_id}/").status_code == 204
    _wait_gone(lambda: KnowledgeBase.objects(knowledge_base_id=kb.knowledge_base_id).count() == 0)
    assert file_vectors(kb.knowledge_base_id, second.file_id) == []
    assert lexical_index().page_ids(knowledge_base_id=kb.knowledge_base_id) == {}
    assert File.objects(knowledge_db_id=kb.knowledge_base_id).count() == 0
    assert bucket_keys() == []
    assert not IngestionJob.objects.filter(knowledge_base_id=kb.knowledge_base_id).exists()


def test_failed_file_keeps_no_page_images_or_vectors(celery_worker, api_client, user):
    from knowledge import pipeline

    kb = knowledge_base_create(user=user, name="Fail")
    item = _upload(api_client, kb.knowledge_base_id, [uploaded("gone.txt", b"will lose its original")])[0]
    job = wait_job(item["task_id"], worker=celery_worker)
    assert job.state == "completed"
    file = File.objects.get(file_id=item["file_id"])
    # Re-run the pipeline on a file whose original has vanished: it fails and cleans everything up.
    objects_delete(keys=[file.minio_filename])
    IngestionJob.objects.filter(pk=job.pk).update(state="queued")
    assert pipeline.ingest_run(job_id=job.pk) is False
    job.refresh_from_db()
    file.reload()
    assert job.state == "failed" and job.error
    assert file.status == "failed" and file.images == [] and file.error
    assert file_vectors(kb.knowledge_base_id, file.file_id) == []
    assert bucket_keys(f"kb/{kb.knowledge_base_id}/{file.file_id}/pages/") == []

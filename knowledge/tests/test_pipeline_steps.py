"""The pipeline's convert/render step, run in-process (the worker tests cover the whole path)."""

import pytest

from knowledge import pipeline, samples
from knowledge.documents import File
from knowledge.models import IngestionJob
from knowledge.outputs import page_images
from knowledge.progress import progress_get
from knowledge.services import files_upload, knowledge_base_create
from layra.storage import objects_delete_prefix
from tests.knowledge_helpers import bucket_keys, uploaded

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(user):
    return knowledge_base_create(user=user, name="Steps")


def _ingest(user, kb, name, data):
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[uploaded(name, data)])[0]
    job = IngestionJob.objects.get(task_id=file.task_id)
    return file, job


def test_pdf_pages_are_rendered_with_their_text_layer_and_deterministic_keys(user, kb):
    file, job = _ingest(user, kb, "two.pdf", samples.make_pdf(["first page words", "second page words"]))
    assert pipeline.ingest_run(job_id=job.pk) is True
    file.reload()
    assert [p.page_number for p in file.images] == [1, 2]
    assert [p.text for p in file.images] == ["first page words", "second page words"]
    assert all(p.has_text and p.width > 500 for p in file.images)
    keys = sorted(p.minio_filename for p in file.images)
    prefix = f"kb/{kb.knowledge_base_id}/{file.file_id}/pages/"
    assert keys == [prefix + "00001.jpg", prefix + "00002.jpg"]
    assert sorted(bucket_keys(prefix)) == keys
    job.refresh_from_db()
    assert (job.state, job.pages_total, job.attempts) == ("rendering", 2, 1)
    assert progress_get(task_id=job.task_id)["processed"] == 2

    ids = [p.images_id for p in file.images]
    assert pipeline.ingest_run(job_id=job.pk) is True  # a redelivered step overwrites, never duplicates
    file.reload()
    assert [p.images_id for p in file.images] == ids
    assert sorted(bucket_keys(prefix)) == keys


def test_text_and_markdown_become_page_images_with_the_text_kept(user, kb):
    text = "# Title\n\n" + "\n".join(f"line {i} of the markdown notes" for i in range(80))
    file, job = _ingest(user, kb, "notes.md", text.encode())
    assert pipeline.ingest_run(job_id=job.pk)
    file.reload()
    assert len(file.images) == 2  # 82 lines, 55 per page
    assert file.images[0].text.startswith("# Title") and "line 79" in file.images[1].text


def test_image_is_one_page(user, kb):
    file, job = _ingest(user, kb, "pic.png", samples.make_png("hello", (400, 300)))
    assert pipeline.ingest_run(job_id=job.pk)
    file.reload()
    assert [(p.page_number, p.width, p.height, p.text) for p in file.images] == [(1, 400, 300, "")]


def test_office_file_is_converted_by_libreoffice(user, kb):
    file, job = _ingest(user, kb, "letter.docx", samples.make_docx(["Penguins migrate across the ice"]))
    assert pipeline.ingest_run(job_id=job.pk)
    file.reload()
    assert len(file.images) == 1 and "Penguins migrate" in file.images[0].text


def test_cancelled_job_does_not_run(user, kb):
    file, job = _ingest(user, kb, "x.txt", b"hello")
    IngestionJob.objects.filter(pk=job.pk).update(state="cancelled")
    assert pipeline.ingest_run(job_id=job.pk) is False
    assert File.objects.get(file_id=file.file_id).images == []


def test_a_second_delivery_waits_for_the_file_lock(user, kb, settings):
    settings.KNOWLEDGE_STEP_LOCK_WAIT = 0
    file, job = _ingest(user, kb, "x.txt", b"hello")
    with pipeline._file_lock(file.file_id), pytest.raises(pipeline.Busy):
        pipeline.ingest_run(job_id=job.pk)
    assert pipeline.ingest_run(job_id=job.pk) is True


def test_embedders_that_read_images_get_the_stored_pages_and_text_only_ones_none(user, kb):
    from embeddings.embedders import get_embedder

    file, job = _ingest(user, kb, "two.pdf", samples.make_pdf(["first page", "second page"]))
    pipeline.ingest_run(job_id=job.pk)
    file.reload()

    class ImageReader:
        uses_images = True

    images = page_images(file.images, embedder=ImageReader())
    assert [(i.width, i.height) for i in images] == [(p.width, p.height) for p in file.images]
    assert get_embedder().uses_images is False  # the CPU default reads the text layer only
    objects_delete_prefix(prefix=f"kb/{kb.knowledge_base_id}/{file.file_id}/pages/")
    placeholders = page_images(file.images, embedder=get_embedder())  # nothing is read from storage
    assert len(placeholders) == 2 and placeholders[0].size == (1, 1)

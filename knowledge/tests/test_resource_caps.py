"""Resource caps on ingestion: text pages counted at upload, rendered pixels, request size, spooled uploads,
and storage keys that never contain a username."""

import tracemalloc

import pytest
from django.core.files.uploadedfile import TemporaryUploadedFile

from accounts.models import User
from knowledge import pipeline, samples
from knowledge.detect import TEXT_ROWS, text_page_count, text_pages
from knowledge.documents import File
from knowledge.models import IngestionJob
from knowledge.purge import knowledge_base_purge
from knowledge.rendering import render_scale
from knowledge.services import files_upload, knowledge_base_create, knowledge_base_delete
from layra.storage import object_get, object_put, objects_delete
from tests.knowledge_helpers import assert_nothing_stored, bucket_keys, upload_url, uploaded

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(user):
    return knowledge_base_create(user=user, name="Caps")


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- text pages --------------------------------------------------------------------------------------------

def test_text_over_the_page_limit_is_refused_at_upload_and_nothing_is_written(api_client, kb, settings):
    assert settings.KNOWLEDGE_MAX_PAGES == 1000
    data = b"x\n" * (TEXT_ROWS * 1005)  # the 110 kB file that became 1,005 pages
    assert len(data) < 111_000
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded("lines.txt", data)]},
                               format="multipart")
    assert response.status_code == 413, response.content
    error = _error(response)
    assert error["code"] == "too_many_pages" and "1000" in error["message"]
    assert_nothing_stored(kb.knowledge_base_id)


def test_text_at_the_page_limit_is_accepted(api_client, kb, settings):
    settings.KNOWLEDGE_MAX_PAGES = 3
    data = b"x\n" * (TEXT_ROWS * 3)
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded("three.txt", data)]},
                               format="multipart")
    assert response.status_code == 201, response.content


def test_text_over_the_byte_limit_is_refused_before_decoding(api_client, kb, settings):
    settings.KNOWLEDGE_MAX_TEXT_BYTES = 1000
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded("big.md", b"# notes\n" * 300)]},
                               format="multipart")
    assert response.status_code == 413 and _error(response)["code"] == "file_too_large"
    assert_nothing_stored(kb.knowledge_base_id)


@pytest.mark.parametrize("text", [
    "", "\n", "one line", "a\n" * 200, "\n" * 500 + "late content", "word " * 5000,
    ("\u3000" * 200 + "\n") * 60 + "x", ("\t\u3000 " * 12 + "\n") * 70 + "end", "x" * 95 + "\n" + " " * 300,
    "tabs\tand\ttabs\n" * 120, "\r\n".join(["crlf"] * 130), ("\x1c" + "y" * 100 + "\n") * 40,
])
def test_the_upload_count_is_the_pages_the_worker_renders(text):
    assert text_page_count(text) == len(text_pages(text))


def test_text_pages_render_one_at_a_time_within_the_limit(user, kb, settings):
    settings.KNOWLEDGE_MAX_PAGES = 2
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("two.txt", b"line\n" * (TEXT_ROWS + 1))])[0]
    job = IngestionJob.objects.get(task_id=file.task_id)
    assert pipeline.ingest_run(job_id=job.pk) is True
    file.reload()
    assert file.page_count == 2 and [p.page_number for p in file.images] == [1, 2]


# --- rendered pixels ---------------------------------------------------------------------------------------

def test_a_page_with_a_huge_mediabox_is_rendered_within_the_pixel_cap(user, kb, settings):
    assert settings.MAX_PAGE_PIXELS == 5_000_000
    pdf = samples.make_pdf(["a huge page", "a letter page"], media_box=(7200, 7200))
    pdf_letter = samples.make_pdf(["a letter page"])
    files = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                         uploaded_files=[uploaded("huge.pdf", pdf), uploaded("letter.pdf", pdf_letter)])
    for file in files:
        assert pipeline.ingest_run(job_id=IngestionJob.objects.get(task_id=file.task_id).pk) is True
        file.reload()
    huge, letter = files
    for page in huge.images:
        # 7,200 pt at 110 dpi would be 11,000 x 11,000 (121 megapixels)
        assert 4_900_000 < page.width * page.height <= 5_000_000 and page.width == page.height
    page = letter.images[0]
    assert (page.width, page.height) == (935, 1210)  # an ordinary page keeps the configured DPI


@pytest.mark.parametrize("size", [(7200, 7200), (14400, 10), (10, 14400), (3001.7, 2999.3), (612, 792)])
def test_render_scale_never_exceeds_the_cap(settings, size):
    import math

    settings.MAX_PAGE_PIXELS = 1_000_000
    scale = render_scale(*size)
    assert math.ceil(size[0] * scale) * math.ceil(size[1] * scale) <= 1_000_000
    assert scale <= settings.KNOWLEDGE_RENDER_DPI / 72


def test_a_large_image_page_is_scaled_down_to_the_cap(user, kb, settings):
    settings.MAX_PAGE_PIXELS = 1_000_000
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("wide.png", samples.make_png("wide", (2000, 1500)))])[0]
    assert pipeline.ingest_run(job_id=IngestionJob.objects.get(task_id=file.task_id).pk) is True
    file.reload()
    page = file.images[0]
    assert page.width * page.height <= 1_000_000 and abs(page.width / page.height - 2000 / 1500) < 0.01


# --- request size and spooled uploads ----------------------------------------------------------------------

def test_an_upload_request_over_the_total_cap_is_413_and_nothing_is_written(api_client, kb, settings):
    settings.MAX_UPLOAD_REQUEST_BYTES = 4096
    files = [uploaded("a.txt", b"a" * 3000), uploaded("b.txt", b"b" * 3000)]  # each under, together over
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": files}, format="multipart")
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "payload_too_large" and error["details"]["limit_bytes"] == 4096
    assert_nothing_stored(kb.knowledge_base_id)


def test_a_json_body_over_its_cap_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_client.post("/api/v1/knowledge-bases/", {"knowledge_base_name": "n" * 2000}, format="json")
    assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"


def _spooled(name: str, data: bytes) -> TemporaryUploadedFile:
    """What Django makes of an upload over FILE_UPLOAD_MAX_MEMORY_SIZE: a temporary file on disk."""
    spooled = TemporaryUploadedFile(name, "application/octet-stream", len(data), None)
    spooled.write(data)
    spooled.flush()
    spooled.seek(0)
    return spooled


def test_a_large_upload_is_streamed_to_storage_not_read_into_memory(user, kb):
    pdf = samples.make_pdf(["big"])
    padding = b"%" + b"p" * 1023 + b"\n"
    body = pdf.replace(b"1 0 obj", padding * 40_000 + b"1 0 obj", 1)  # ~40 MB of PDF comments
    big = _spooled("big.pdf", body)
    tracemalloc.start()
    try:
        file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[big])[0]
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, peak  # the whole file would be 40 MB, twice over with the old read()
    assert file.size == len(body) and file.kind == "pdf"
    assert object_get(key=file.minio_filename) == body


# --- storage keys from ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["..", ".hidden", "a.b-c_d@e+f", "Zoë"])
def test_users_with_odd_names_upload_and_ingest(username):
    """Names made before the username rules (`..` got a 500 on every upload) work: keys hold only ids."""
    owner = User.objects.create_user(username=username, password="a-Long-enough-pass")
    kb = knowledge_base_create(user=owner, name="odd")
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=owner)
    response = client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded("a.pdf", samples.make_pdf(["hi"]))]},
                           format="multipart")
    assert response.status_code == 201, response.content
    file = File.objects.get(file_id=response.json()[0]["file_id"])
    assert file.minio_filename == f"kb/{kb.knowledge_base_id}/{file.file_id}/original"
    assert pipeline.ingest_run(job_id=IngestionJob.objects.get(task_id=file.task_id).pk) is True
    file.reload()
    assert all(p.minio_filename.startswith(f"kb/{kb.knowledge_base_id}/{file.file_id}/pages/") for p in file.images)
    assert not any(username in key.split("/") for key in bucket_keys())
    knowledge_base_delete(user=owner, knowledge_base_id=kb.knowledge_base_id)
    knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)
    assert bucket_keys() == []


def test_files_stored_under_the_old_owner_named_keys_are_still_read_and_purged(user, kb):
    """Objects written before keys were built from ids stay where they are and are found from the record."""
    file = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                        uploaded_files=[uploaded("old.pdf", samples.make_pdf(["old"]))])[0]
    legacy = f"{user.username}/{kb.knowledge_base_id}/{file.file_id}/original"
    object_put(key=legacy, data=object_get(key=file.minio_filename))
    objects_delete(keys=[file.minio_filename])
    File.objects(file_id=file.file_id).update_one(set__minio_filename=legacy)
    assert pipeline.ingest_run(job_id=IngestionJob.objects.get(task_id=file.task_id).pk) is True
    file.reload()
    assert file.images[0].minio_filename.startswith(f"{user.username}/{kb.knowledge_base_id}/{file.file_id}/pages/")
    knowledge_base_delete(user=user, knowledge_base_id=kb.knowledge_base_id)
    knowledge_base_purge(knowledge_base_id=kb.knowledge_base_id)
    assert bucket_keys() == []

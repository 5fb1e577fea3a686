import pytest

from knowledge import samples
from knowledge.documents import File
from knowledge.models import IngestionJob
from knowledge.services import files_upload, knowledge_base_create
from tests.knowledge_helpers import assert_nothing_stored, bucket_keys, upload_url, uploaded

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb(user):
    return knowledge_base_create(user=user, name="Uploads")


PDF = samples.make_pdf(["A valid page"])
BAD_CORPUS = [
    ("empty.pdf", b"", 400, "empty_file"),
    ("truncated.pdf", PDF[: len(PDF) // 2], 400, "unreadable_file"),
    ("encrypted.pdf", samples.make_pdf(["secret"], encrypt=True), 400, "encrypted_pdf"),
    ("archive.pdf", samples.make_zip({"notes.txt": b"not a document"}), 415, "unsupported_media_type"),
    ("bomb.png", samples.make_pixel_bomb_png(), 400, "decompression_bomb"),
    ("program.pdf", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("name", "data", "status", "code"), BAD_CORPUS, ids=[c[0] for c in BAD_CORPUS])
def test_bad_upload_is_refused_with_a_clear_error_and_nothing_left(api_client, kb, name, data, status, code):
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded(name, data)]}, format="multipart")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert_nothing_stored(kb.knowledge_base_id)


def test_over_the_size_limit_is_413_and_nothing_left(api_client, kb, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = len(PDF) - 1
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": [uploaded("big.pdf", PDF)]},
                               format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert_nothing_stored(kb.knowledge_base_id)


def test_over_the_page_limit_is_413(api_client, kb, settings):
    settings.KNOWLEDGE_MAX_PAGES = 2
    response = api_client.post(upload_url(kb.knowledge_base_id),
                               {"files": [uploaded("long.pdf", samples.make_pdf(["1", "2", "3"]))]},
                               format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_pages"
    assert_nothing_stored(kb.knowledge_base_id)


def test_one_bad_file_refuses_the_whole_batch(api_client, kb):
    files = [uploaded("good.pdf", PDF), uploaded("bad.pdf", b"")]
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": files}, format="multipart")
    assert response.status_code == 400
    assert_nothing_stored(kb.knowledge_base_id)


def test_batch_limit(api_client, kb, settings):
    settings.KNOWLEDGE_MAX_BATCH_FILES = 2
    files = [uploaded(f"{i}.txt", f"text {i}".encode()) for i in range(3)]
    response = api_client.post(upload_url(kb.knowledge_base_id), {"files": files}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_files"
    assert_nothing_stored(kb.knowledge_base_id)


def test_traversal_name_is_sanitised_and_key_is_built_from_ids(api_client, user, kb):
    response = api_client.post(upload_url(kb.knowledge_base_id),
                               {"files": [uploaded("../../etc/pass\x01wd.pdf", PDF)]}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()[0]
    assert body["filename"] == "passwd.pdf"
    file = File.objects.get(file_id=body["file_id"])
    assert file.minio_filename == f"kb/{kb.knowledge_base_id}/{file.file_id}/original"
    assert bucket_keys() == [file.minio_filename]
    assert body["kind"] == "pdf" and body["status"] == "queued" and body["task_id"]


def test_name_made_only_of_traversal_is_refused(user, kb):
    from layra.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                     uploaded_files=[uploaded("..\\..\\", PDF)])
    assert err.value.code == "invalid_filename"
    assert_nothing_stored(kb.knowledge_base_id)


def test_type_is_decided_by_content_not_name(user, kb):
    files = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[
        uploaded("report.txt", PDF), uploaded("photo.pdf", samples.make_png("x")),
        uploaded("letter.bin", samples.make_docx(["hello"])), uploaded("notes.pdf", b"# Title\n\nplain text"),
    ])
    assert [(f.kind, f.content_type) for f in files] == [
        ("pdf", "application/pdf"), ("image", "image/png"),
        ("office", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("text", "text/plain"),
    ]


def test_same_content_in_a_kb_returns_the_existing_file(user, kb):
    first = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[uploaded("a.pdf", PDF)])
    again = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                         uploaded_files=[uploaded("b.pdf", PDF), uploaded("c.pdf", PDF)])
    assert {f.file_id for f in again} == {first[0].file_id}
    assert File.objects(knowledge_db_id=kb.knowledge_base_id).count() == 1
    assert IngestionJob.objects.filter(knowledge_base_id=kb.knowledge_base_id).count() == 1
    other_kb = knowledge_base_create(user=user, name="Other")
    elsewhere = files_upload(user=user, knowledge_base_id=other_kb.knowledge_base_id,
                             uploaded_files=[uploaded("a.pdf", PDF)])
    assert elsewhere[0].file_id != first[0].file_id


def test_upload_is_audited(user, kb):
    from accounts.models import AuditLog

    files = files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[uploaded("a.pdf", PDF)])
    assert AuditLog.objects.filter(action="file.upload", resource_id=files[0].file_id).exists()

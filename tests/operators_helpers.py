"""Helpers for operator tests: ingest real files through the knowledge services with eager Celery."""

from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import samples


def ingest(user, capture, *, name="Ops KB", docs=None):
    """A KB with the given {filename: bytes} (default: a 2-page PDF and a text file), fully ingested."""
    from knowledge.documents import File, KnowledgeBase
    from knowledge.services import files_upload, knowledge_base_create

    docs = docs or {
        "spices.pdf": samples.make_pdf(["Zanzibar exports cloves and nutmeg", "Quarterly revenue of the spice trade"]),
        "penguins.txt": b"Emperor penguins huddle together through the polar winter.",
    }
    kb = knowledge_base_create(user=user, name=name)
    with capture(execute=True):
        files_upload(user=user, knowledge_base_id=kb.knowledge_base_id,
                     uploaded_files=[SimpleUploadedFile(n, d) for n, d in docs.items()])
    files = list(File.objects(knowledge_db_id=kb.knowledge_base_id))
    assert [f.status for f in files] == ["completed"] * len(docs), [(f.filename, f.error) for f in files]
    return KnowledgeBase.objects.get(knowledge_base_id=kb.knowledge_base_id), files

import pytest


@pytest.fixture
def restartable_worker(monkeypatch, request):
    """A real worker whose broker restores unacked messages after a few seconds (a killed worker's task
    comes back quickly instead of after the production visibility timeout)."""
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "6")
    monkeypatch.setenv("CELERY_UNACKED_RESTORE_INTERVAL", "2")
    monkeypatch.setenv("KNOWLEDGE_STEP_LOCK_TTL", "15")
    return request.getfixturevalue("celery_worker")

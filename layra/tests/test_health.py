import pytest


@pytest.mark.django_db
def test_live_answers_without_auth(anon_client):
    response = anon_client.get("/api/v1/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_reports_every_store_with_latency(anon_client):
    response = anon_client.get("/api/v1/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "mongo", "redis", "milvus", "storage", "broker"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0


@pytest.mark.django_db
def test_ready_is_503_when_redis_is_down(anon_client, services):
    services["redis"].stop()
    try:
        response = anon_client.get("/api/v1/health/ready")
    finally:
        services["redis"].start()
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["mongo"]["status"] == "ok"


@pytest.mark.django_db
def test_ready_is_503_when_s3_is_down(anon_client, services):
    services["s3"].stop()
    try:
        response = anon_client.get("/api/v1/health/ready")
    finally:
        services["s3"].start()
        from layra.storage import ensure_bucket

        ensure_bucket()
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["status"] == "down"


@pytest.mark.django_db
def test_ready_is_503_when_mongo_is_down(anon_client, settings):
    from layra import mongo

    settings.MONGODB_URI = "mongodb://127.0.0.1:1/layra?retryWrites=false&serverSelectionTimeoutMS=300"
    mongo.connect()
    try:
        response = anon_client.get("/api/v1/health/ready")
    finally:
        settings.MONGODB_URI = __import__("os").environ["MONGODB_URI"]
        mongo.connect()
    assert response.status_code == 503
    assert response.json()["checks"]["mongo"]["status"] == "down"

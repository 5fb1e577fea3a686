import pytest

from chat import selectors
from chat.documents import ModelConfig
from layra.cache import TOMBSTONE
from layra.errors import NotFound, ValidationError
from layra.mongo import database
from layra.redis import redis_client

pytestmark = pytest.mark.django_db

SECRET = "sk-live-1234567890abcdefWXYZ"


def _create(client, **overrides):
    body = {"model_name": "gpt-4o", "model_url": "https://api.example.com/v1", "api_key": SECRET,
            "temperature": 0.2, "max_length": 512, "top_P": 0.9, "top_K": 4, "score_threshold": 0.1,
            "system_prompt": "Be brief."}
    body.update(overrides)
    response = client.post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_api_key_is_encrypted_at_rest_and_masked_on_output(api_client, user):
    model = _create(api_client)
    assert model["api_key"] == "sk-...WXYZ"
    assert model["has_api_key"] is True
    raw = database()["model_config"].find_one({"username": user.username})
    assert SECRET not in str(raw)
    assert raw["models"][0]["api_key"] and raw["models"][0]["api_key"] != SECRET
    listed = api_client.get("/api/v1/models/")
    assert SECRET not in listed.content.decode()
    assert selectors.model_resolve(user=user, model_id=model["model_id"]).api_key == SECRET


def test_first_model_is_selected_and_resolve_uses_selection(api_client, user):
    first = _create(api_client)
    second = _create(api_client, model_name="llava")
    assert first["is_selected"] and not second["is_selected"]
    assert selectors.model_resolve(user=user).model_name == "gpt-4o"
    response = api_client.put("/api/v1/models/selected", {"model_id": second["model_id"]}, format="json")
    assert response.status_code == 200
    assert response.json()["selected_model"] == second["model_id"]
    resolved = selectors.model_resolve(user=user)
    assert resolved.model_name == "llava"
    assert resolved.extra["top_K"] == 4 and resolved.temperature == 0.2 and resolved.system_prompt == "Be brief."
    assert api_client.get("/api/v1/models/selected").json()["model"]["model_name"] == "llava"


def test_no_selected_model_is_a_validation_error_saying_what_to_do(user):
    with pytest.raises(ValidationError, match="models/selected"):
        selectors.model_resolve(user=user)


def test_update_keeps_key_unless_given_and_invalidates_cache(api_client, user):
    model = _create(api_client)
    key = f"model_config:{user.username}"
    redis_client("cache").delete(key)  # the create's tombstone expires
    api_client.get("/api/v1/models/")
    assert '"temperature": 0.2' in redis_client("cache").get(key)  # the list filled it
    response = api_client.patch(f"/api/v1/models/{model['model_id']}/", {"temperature": 1.5}, format="json")
    assert response.status_code == 200 and response.json()["temperature"] == 1.5
    assert redis_client("cache").get(key) == TOMBSTONE  # dropped; reads go to Mongo until the tombstone expires
    assert api_client.get(f"/api/v1/models/{model['model_id']}/").json()["temperature"] == 1.5
    assert selectors.model_resolve(user=user).api_key == SECRET
    api_client.patch(f"/api/v1/models/{model['model_id']}/", {"api_key": "sk-other-key-000000009999"},
                     format="json")
    assert selectors.model_resolve(user=user).api_key == "sk-other-key-000000009999"
    assert api_client.get(f"/api/v1/models/{model['model_id']}/").json()["api_key"] == "sk-...9999"


def test_cached_config_is_served_from_redis(api_client, user):
    model = _create(api_client)
    redis_client("cache").delete(f"model_config:{user.username}")  # the create's tombstone expires
    api_client.get("/api/v1/models/")
    # a change behind the service's back is not seen until the cache expires or a service writes
    ModelConfig.objects(username=user.username).update_one(set__selected_model=None)
    assert selectors.model_resolve(user=user).extra["model_id"] == model["model_id"]


def test_delete_selected_model_clears_selection(api_client, user):
    model = _create(api_client)
    assert api_client.delete(f"/api/v1/models/{model['model_id']}/").status_code == 204
    assert api_client.get("/api/v1/models/").json()["results"] == []
    assert api_client.get("/api/v1/models/selected").json() == {"selected_model": None, "model": None}
    assert api_client.get(f"/api/v1/models/{model['model_id']}/").status_code == 404


def test_other_users_model_is_404(api_client, other_client, other_user):
    model = _create(api_client)
    assert other_client.get(f"/api/v1/models/{model['model_id']}/").status_code == 404
    assert other_client.patch(f"/api/v1/models/{model['model_id']}/", {"top_K": 2}, format="json").status_code == 404
    assert other_client.delete(f"/api/v1/models/{model['model_id']}/").status_code == 404
    assert other_client.put("/api/v1/models/selected", {"model_id": model["model_id"]},
                            format="json").status_code == 404
    assert other_client.post(f"/api/v1/models/{model['model_id']}/test").status_code == 404
    with pytest.raises(NotFound):
        selectors.model_resolve(user=other_user, model_id=model["model_id"])


@pytest.mark.parametrize("body, field", [
    ({"model_url": "not a url"}, "model_url"),
    ({"model_url": "ftp://example.com/v1"}, "model_url"),
    ({"temperature": 5}, "temperature"),
    ({"top_K": 0}, "top_K"),
    ({"model_name": ""}, "model_name"),
])
def test_bad_model_fields_are_400(api_client, body, field):
    base = {"model_name": "m", "model_url": "https://api.example.com/v1"}
    response = api_client.post("/api/v1/models/", {**base, **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_base_used_with_unknown_kb_is_404(api_client):
    response = api_client.post("/api/v1/models/", {"model_name": "m", "model_url": "https://api.example.com/v1",
                                                   "base_used": ["no-such-kb"]}, format="json")
    assert response.status_code == 404


def test_connection_test_reports_ok_and_failure(api_client, fake_llm, refused_url):
    model = _create(api_client, model_url=fake_llm.url)
    result = api_client.post(f"/api/v1/models/{model['model_id']}/test").json()
    assert result["ok"] is True and result["reply"] == fake_llm.reply
    assert fake_llm.last["model"] == "gpt-4o"
    assert fake_llm.headers[-1]["authorization"] == f"Bearer {SECRET}"
    fake_llm.mode = "401"
    result = api_client.post(f"/api/v1/models/{model['model_id']}/test").json()
    assert result["ok"] is False and "401" in result["error"]
    bad = _create(api_client, model_url=refused_url)
    result = api_client.post(f"/api/v1/models/{bad['model_id']}/test").json()
    assert result["ok"] is False and "connect" in result["error"].lower()


def test_model_changes_are_audited_without_the_key(api_client, user):
    from accounts.models import AuditLog

    model = _create(api_client)
    api_client.patch(f"/api/v1/models/{model['model_id']}/", {"api_key": "sk-new-key-0000000000001234"},
                     format="json")
    api_client.delete(f"/api/v1/models/{model['model_id']}/")
    logs = list(AuditLog.objects.filter(resource_id=model["model_id"]).order_by("id"))
    assert [log.action for log in logs] == ["model.create", "model.update", "model.delete"]
    assert all(SECRET not in str(log.details) and "sk-new" not in str(log.details) for log in logs)

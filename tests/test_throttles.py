"""Every authenticated endpoint counts against a per-user budget: reads, writes, and the expensive turns."""

import pytest

from tests.workflows_helpers import chain, node

pytestmark = pytest.mark.django_db

KBS = "/api/v1/knowledge-bases/"


def _error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def _workflow(client) -> str:
    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"reply": "'ok'"}),
                         node("end", "end", outputs={"reply": "reply"}))
    body = {"workflow_name": "wf", "nodes": nodes, "edges": edges, "global_variables": {"user_message": ""}}
    created = client.post("/api/v1/workflows/", body, format="json")
    assert created.status_code == 201, created.content
    return created.json()["workflow_id"]


def test_reads_over_the_users_rate_are_429_in_the_error_shape(settings, api_client, other_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": "3/60"}
    assert [api_client.get(KBS).status_code for _ in range(3)] == [200] * 3
    refused = api_client.get("/api/v1/auth/me")  # any read endpoint: the budget is the user's
    assert refused.status_code == 429
    assert _error(refused)["code"] == "rate_limited" and _error(refused)["details"]["scope"] == "read"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert other_client.get(KBS).status_code == 200  # per user


def test_writes_have_their_own_smaller_budget(settings, api_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "write": "2/60"}
    for name in ("a", "b"):
        assert api_client.post(KBS, {"knowledge_base_name": name}, format="json").status_code == 201
    refused = api_client.post(KBS, {"knowledge_base_name": "c"}, format="json")
    assert refused.status_code == 429 and _error(refused)["details"]["scope"] == "write"
    assert api_client.get(KBS).json()["count"] == 2  # reads go on
    assert api_client.delete(f"{KBS}nope/").status_code == 429  # DELETE is a write


def test_workflow_runs_are_limited_per_user(settings, api_client, other_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "workflow_run": "2/60"}
    url = f"/api/v1/workflows/{_workflow(api_client)}/runs"
    assert [api_client.post(url, {}, format="json").status_code for _ in range(2)] == [202, 202]
    refused = api_client.post(url, {}, format="json")
    assert refused.status_code == 429 and _error(refused)["details"]["scope"] == "workflow_run"
    other_url = f"/api/v1/workflows/{_workflow(other_client)}/runs"
    assert other_client.post(other_url, {}, format="json").status_code == 202


def test_chatflow_messages_are_limited_per_user(settings, api_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "chatflow_message": "1/60"}
    chatflow = api_client.post("/api/v1/chatflows/", {"workflow_id": _workflow(api_client)}, format="json").json()
    url = f"/api/v1/chatflows/{chatflow['chatflow_id']}/messages/"
    assert api_client.post(url, {"message": "hello"}, format="json").status_code == 201
    refused = api_client.post(url, {"message": "again"}, format="json")
    assert refused.status_code == 429 and _error(refused)["details"]["scope"] == "chatflow_message"
    assert len(api_client.get(f"/api/v1/chatflows/{chatflow['chatflow_id']}/").json()["turns"]) == 1


def test_default_budgets_come_from_the_settings():
    from django.conf import settings

    assert settings.RATE_LIMITS["read"] == "600/60" and settings.RATE_LIMITS["write"] == "120/60"
    assert settings.RATE_LIMITS["chat"] == settings.RATE_LIMITS["workflow_run"] == "30/60"
    assert settings.RATE_LIMITS["chatflow_message"] == "30/60"
    assert "accounts.throttling.UserRateThrottle" in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]


def test_anonymous_requests_are_not_counted_against_any_user(settings, anon_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": "1/60"}
    for _ in range(3):
        assert anon_client.get(KBS).status_code == 401


def test_a_view_marked_throttle_exempt_is_not_counted(settings, user):
    """For signed, expiring image URLs (DECISIONS: they do not count against the per-user API throttle)."""
    from rest_framework.test import APIRequestFactory

    from accounts.throttling import UserRateThrottle
    from layra.errors import RateLimited

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "read": "1/60"}
    request = APIRequestFactory().get("/")
    request.user = user

    class SignedImage:
        throttle_exempt = True

    class Ordinary:
        pass

    assert all(UserRateThrottle().allow_request(request, SignedImage()) for _ in range(3))
    assert UserRateThrottle().allow_request(request, Ordinary())
    with pytest.raises(RateLimited):
        UserRateThrottle().allow_request(request, Ordinary())


def test_chat_turns_share_one_budget_per_user_across_the_chat_and_openai_routes(settings, api_client, other_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "chat": "2/60"}
    asked = "/api/v1/conversations/no-such-conversation/messages/?stream=false"
    # The budget counts every turn asked, before the conversation is looked up (a 404 costs a turn too).
    assert [api_client.post(asked, {"question": "hi"}, format="json").status_code for _ in range(2)] == [404, 404]
    refused = api_client.post(asked, {"question": "hi"}, format="json")
    assert refused.status_code == 429 and _error(refused)["details"]["scope"] == "chat"
    completion = api_client.post("/api/v1/openai/chat/completions",
                                 {"model": "any", "messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert completion.status_code == 429
    assert completion.json()["error"]["code"] == "rate_limited"  # OpenAI's error shape on that route
    assert other_client.post(asked, {"question": "hi"}, format="json").status_code == 404  # per user

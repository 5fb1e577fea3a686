"""The OpenAI-compatible endpoint through the real `openai` SDK against the live test server (the product's WSGI
app in a thread) and the fake LLM: models, a cited answer streamed and not, usage, and OpenAI's error shape."""

import openai
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.services import api_key_create
from chat.services import model_create
from chat.tests.helpers import text_pdf
from knowledge import services as knowledge_services
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

PAGES = ["Photosynthesis converts sunlight into chemical energy in plants.",
         "Volcanoes erupt molten rock called lava from the mantle."]


@pytest.fixture
def world(live_server, fake_llm, settings):
    settings.RATE_LIMIT_ENABLED = False
    user = UserFactory()
    _record, key = api_key_create(user=user, name="sdk")
    kb = knowledge_services.knowledge_base_create(user=user, name="Science")
    files = knowledge_services.files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[
        SimpleUploadedFile("biology.pdf", text_pdf(PAGES), content_type="application/pdf")])
    model = model_create(user=user, model_name="vision-model", model_url=fake_llm.url, api_key="sk-test-0000abcd",
                         base_used=[kb.knowledge_base_id],
                         top_K=1, select=True)
    client = openai.OpenAI(base_url=f"{live_server.url}/api/v1/openai", api_key=key, max_retries=0, timeout=60)
    return {"user": user, "key": key, "kb": kb, "file": files[0], "model": model, "client": client}


def _check_citation(citation: dict, world) -> None:
    assert citation["file_id"] == world["file"].file_id and citation["filename"] == "biology.pdf"
    assert citation["knowledge_base_id"] == world["kb"].knowledge_base_id and citation["page_number"] == 1
    assert "Photosynthesis" in citation["snippet"] and citation["score"] > 0
    assert citation["image_url"].startswith(f"/api/v1/files/{world['file'].file_id}/pages/1/image/?size=full&")
    assert citation["thumbnail_url"].startswith(f"/api/v1/files/{world['file'].file_id}/pages/1/image/?size=thumb&")


def test_models_lists_the_users_model_configs(world):
    models = world["client"].models.list()
    assert [m.id for m in models.data] == [world["model"].model_id]
    assert models.data[0].model_name == "vision-model"
    assert world["client"].models.retrieve(world["model"].model_id).id == world["model"].model_id


def test_completion_answers_with_citations_and_usage(world, fake_llm):
    fake_llm.reply = "Plants make chemical energy from light [1]."
    completion = world["client"].chat.completions.create(
        model=world["model"].model_id, messages=[{"role": "user", "content": "How do plants use sunlight?"}],
        extra_body={"knowledge_base_ids": [world["kb"].knowledge_base_id]})
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Plants make chemical energy from light [1]."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (123, 7)
    assert completion.usage_estimated is False
    [citation] = completion.choices[0].message.citations
    _check_citation(citation, world)
    sent = fake_llm.last["messages"][-1]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/") for p in sent)
    assert sent[-1] == {"type": "text", "text": "Question: How do plants use sunlight?"}


def test_streamed_completion_ends_with_citations_usage_and_done(world, fake_llm, live_server):
    fake_llm.reply = "Light becomes sugar in the leaves."
    fake_llm.usage = {}  # the provider reports no usage: the counts are estimated, and say so
    stream = world["client"].chat.completions.create(
        model="vision-model", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What do plants do with sunlight?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Light becomes sugar in the leaves."
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1
    [citation] = final[0].citations  # the model config's knowledge base, searched by default
    _check_citation(citation, world)
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage_estimated is True
    assert usage.usage.completion_tokens == 6 and usage.usage.prompt_tokens > 0
    assert usage.usage.total_tokens == usage.usage.prompt_tokens + usage.usage.completion_tokens
    assert fake_llm.last["messages"][0] == {"role": "system", "content": "Answer briefly."}
    # The raw stream is OpenAI's SSE framing and ends with [DONE].
    raw = requests.post(f"{live_server.url}/api/v1/openai/chat/completions", stream=True, timeout=60,
                        headers={"Authorization": f"Bearer {world['key']}"},
                        json={"model": "vision-model", "stream": True, "knowledge_base_ids": [],
                              "messages": [{"role": "user", "content": "Hello?"}]})
    assert raw.headers["Content-Type"].startswith("text/event-stream")
    lines = [line for line in raw.text.split("\n\n") if line.strip()]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_errors_have_openais_shape(world, live_server):
    with pytest.raises(openai.NotFoundError) as missing:
        world["client"].chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body == {"message": "The model 'no-such-model' does not exist (give a model id or name "
                                             "from GET models).", "type": "invalid_request_error", "param": None,
                                  "code": "model_not_found"}
    with pytest.raises(openai.BadRequestError) as bad:
        world["client"].chat.completions.create(model=world["model"].model_id, messages=[])
    assert bad.value.body["param"] == "messages" and bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):  # another user's knowledge base looks like a missing one
        other = UserFactory()
        theirs = knowledge_services.knowledge_base_create(user=other, name="Theirs")
        world["client"].chat.completions.create(model=world["model"].model_id,
                                                messages=[{"role": "user", "content": "Hi"}],
                                                extra_body={"knowledge_base_ids": [theirs.knowledge_base_id]})
    anonymous = openai.OpenAI(base_url=f"{live_server.url}/api/v1/openai", api_key="lyr_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        anonymous.models.list()
    assert set(refused.value.body) == {"message", "type", "param", "code"}
    unknown = requests.get(f"{live_server.url}/api/v1/openai/embeddings", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_model_failure_mid_stream_raises_in_the_sdk(world, fake_llm):
    fake_llm.mode = "500"
    stream = world["client"].chat.completions.create(model=world["model"].model_id, stream=True,
                                                     messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.APIError, match="HTTP status 500"):
        list(stream)


def test_openapi_documents_the_openai_routes_with_openais_error_object():
    from drf_spectacular.generators import SchemaGenerator

    from chat.openai_api.errors import openai_error

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, method in (("/api/v1/openai/chat/completions", "post"), ("/api/v1/openai/models", "get"),
                         ("/api/v1/openai/models/{model_id}", "get")):
        operation = schema["paths"][path][method]
        assert operation["tags"] == ["openai"] and not operation.get("deprecated"), path
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/OpenAIError"}
    component = schema["components"]["schemas"]
    inner = component[component["OpenAIError"]["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(inner["properties"]) == set(openai_error(status=400, code="x", message="y")["error"])
    completion = schema["paths"]["/api/v1/openai/chat/completions"]["post"]
    assert set(completion["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}


def test_model_failure_without_streaming_is_a_502_in_openais_shape(world, fake_llm):
    fake_llm.mode = "401"
    with pytest.raises(openai.InternalServerError) as failed:
        world["client"].chat.completions.create(model=world["model"].model_id,
                                                messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code == 502
    assert failed.value.body == {"message": "The model endpoint rejected the API key (401).", "type": "api_error",
                                 "param": None, "code": "model_error"}

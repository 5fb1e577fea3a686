"""The MCP server at /mcp through a real client session of the official `mcp` SDK, against the live test server
(the product's WSGI app, as gunicorn serves it) and the fake LLM: tools listed, `search` and `ask` answered from
the caller's knowledge bases, `get_page_image`, resources; refused without a key; another user's knowledge base
invisible and unusable."""

import json

import anyio
import httpx2
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from accounts.services import api_key_create
from chat.services import model_create
from chat.tests.helpers import text_pdf
from knowledge import services as knowledge_services
from tests.factories import UserFactory
from tests.test_observability import gunicorn  # noqa: F401 - the real-server fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

PAGES = ["Photosynthesis converts sunlight into chemical energy in plants.",
         "Volcanoes erupt molten rock called lava from the mantle."]


def _user_with_kb(name: str, pages: list[str], filename: str):
    user = UserFactory()
    _record, key = api_key_create(user=user, name="mcp")
    kb = knowledge_services.knowledge_base_create(user=user, name=name)
    [file] = knowledge_services.files_upload(user=user, knowledge_base_id=kb.knowledge_base_id, uploaded_files=[
        SimpleUploadedFile(filename, text_pdf(pages), content_type="application/pdf")])
    return user, key, kb, file


@pytest.fixture
def world(live_server, fake_llm, settings):
    settings.RATE_LIMIT_ENABLED = False
    user, key, kb, file = _user_with_kb("Science", PAGES, "biology.pdf")
    model_create(user=user, model_name="vision-model", model_url=fake_llm.url, api_key="sk-test-0000abcd",
                 base_used=[kb.knowledge_base_id], top_K=1, select=True)
    _other, _other_key, other_kb, _other_file = _user_with_kb("Secrets", ["Photosynthesis secret plans."],
                                                              "secret.pdf")
    return {"url": f"{live_server.url}/mcp", "key": key, "kb": kb, "file": file, "other_kb": other_kb}


def _session(world, key: str | None):
    """Run `steps(session)` in a real MCP client session over streamable HTTP with this API key."""
    async def run(steps):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                streamable_http_client(world["url"], http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await steps(session)

    return lambda steps: anyio.run(run, steps)


def _json(result) -> dict:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


def test_tools_search_and_ask_run_as_the_caller(world, fake_llm):
    fake_llm.reply = "Plants turn light into chemical energy [1]."
    kb_id, file_id = world["kb"].knowledge_base_id, world["file"].file_id

    async def steps(session):
        tools = {tool.name for tool in (await session.list_tools()).tools}
        kbs = _json(await session.call_tool("list_knowledge_bases", {}))
        found = _json(await session.call_tool("search", {"query": "photosynthesis sunlight", "top_k": 2}))
        filtered = _json(await session.call_tool("search", {"query": "photosynthesis", "knowledge_base_ids": [kb_id],
                                                            "filters": {"filename": "no-such-file"}}))
        kept = _json(await session.call_tool("search", {"query": "photosynthesis", "filters": {
            "filename": "BIOLOGY", "uploaded_after": "2000-01-01T00:00:00Z"}}))
        bad_dates = await session.call_tool("search", {"query": "photosynthesis", "filters": {
            "uploaded_after": "2030-01-01T00:00:00Z", "uploaded_before": "2020-01-01T00:00:00Z"}})
        answer = _json(await session.call_tool("ask", {"question": "What does photosynthesis do?"}))
        image = await session.call_tool("get_page_image", {"file_id": file_id, "page_number": 1, "size": "thumb"})
        return tools, kbs, found, filtered, kept, bad_dates, answer, image

    tools, kbs, found, filtered, kept, bad_dates, answer, image = _session(world, world["key"])(steps)
    assert {"list_knowledge_bases", "search", "ask", "get_page_image"} <= tools
    assert [kb["knowledge_base_id"] for kb in kbs["knowledge_bases"]] == [kb_id]  # not the other user's
    assert found["results"], found
    assert {hit["knowledge_base_id"] for hit in found["results"]} == {kb_id}
    best = found["results"][0]
    assert (best["file_id"], best["filename"], best["page_number"]) == (file_id, "biology.pdf", 1)
    assert "Photosynthesis" in best["snippet"]
    assert best["image_url"].startswith(world["url"].removesuffix("/mcp") + f"/api/v1/files/{file_id}/pages/1/")
    assert requests.get(best["image_url"], timeout=30).headers["Content-Type"].startswith("image/")
    assert filtered == {"results": []}
    assert {hit["file_id"] for hit in kept["results"]} == {file_id}  # the same filters as search/, case-blind
    assert bad_dates.is_error and "Invalid search filters" in bad_dates.content[0].text
    assert answer["answer"] == "Plants turn light into chemical energy [1]."
    [citation] = answer["citations"]
    assert (citation["index"], citation["file_id"], citation["page_number"]) == (1, file_id, 1)
    assert answer["usage"]["total_tokens"] == 130
    assert any(p["type"] == "image_url" for p in fake_llm.last["messages"][-1]["content"])
    assert not image.is_error and "biology.pdf, page 1" in image.content[0].text
    assert image.content[1].type == "image" and image.content[1].mime_type == "image/jpeg"


def test_another_users_knowledge_base_and_file_are_not_found(world):
    other = world["other_kb"].knowledge_base_id

    async def steps(session):
        search = await session.call_tool("search", {"query": "photosynthesis", "knowledge_base_ids": [other]})
        ask = await session.call_tool("ask", {"question": "Secrets?", "knowledge_base_ids": [other]})
        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        mine = await session.read_resource(f"layra://knowledge-bases/{world['kb'].knowledge_base_id}")
        try:
            await session.read_resource(f"layra://knowledge-bases/{other}")
            theirs = None
        except Exception as exc:  # noqa: BLE001 - the SDK raises the server's JSON-RPC error
            theirs = str(exc)
        return search, ask, templates, mine, theirs

    search, ask, templates, mine, theirs = _session(world, world["key"])(steps)
    assert search.is_error and search.content[0].text.endswith("Knowledge base not found.")
    assert ask.is_error and ask.content[0].text.endswith("Knowledge base not found.")
    assert {"layra://knowledge-bases/{knowledge_base_id}", "layra://files/{file_id}"} <= templates
    body = json.loads(mine.contents[0].text)
    assert [f["filename"] for f in body["files"]] == ["biology.pdf"]
    assert theirs is not None and "not found" in theirs.lower()


def test_refused_without_a_valid_api_key(world):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer lyr_not-a-key"}, {"X-API-Key": "nope"}):
        response = requests.post(world["url"], json=initialize, headers={**accept, **headers}, timeout=30)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK's own client fails to connect (HTTP 401)
        _session(world, None)(lambda session: session.list_tools())
    ok = requests.post(world["url"], json=initialize, headers={**accept, "X-API-Key": world["key"]}, timeout=30)
    assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "layra"
    unknown = requests.get(world["url"] + "/no-such-route", headers={"X-API-Key": world["key"]}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    # Stateless: no server-to-client stream to open (nothing would hold a gunicorn thread for it).
    listen = requests.get(world["url"], headers={**accept, "X-API-Key": world["key"]}, timeout=30)
    assert listen.status_code == 405 and listen.headers["Allow"] == "POST"
    assert listen.json()["error"]["code"] == "method_not_allowed"


def test_mcp_under_gunicorn_while_an_answer_streams(gunicorn, fake_llm):  # noqa: F811 - the fixture
    """The production server (gunicorn.conf.py: gthread, 2 workers x 2 threads here): a whole MCP session is
    answered, request by request by any worker, while a streamed answer holds a thread open; the stream then ends
    as it should."""
    url, _log = gunicorn
    user, key, kb, file = _user_with_kb("Science", PAGES, "biology.pdf")
    model_create(user=user, model_name="vision-model", model_url=fake_llm.url, api_key="sk-test-0000abcd",
                 base_used=[kb.knowledge_base_id], top_K=1, select=True)
    fake_llm.reply, fake_llm.mode, fake_llm.delay = "A slow streamed answer.", "stall", 4.0
    stream = requests.post(f"{url}/api/v1/openai/chat/completions", stream=True, timeout=60,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"model": "vision-model", "stream": True,
                                 "messages": [{"role": "user", "content": "What do plants do?"}]})
    lines = (line for line in stream.iter_lines(decode_unicode=True) if line)
    first = [next(lines), next(lines)]  # the role chunk and the first token: the model now stalls
    assert json.loads(first[1].removeprefix("data: "))["choices"][0]["delta"]["content"] == "A "

    async def steps(session):
        tools = await session.list_tools()
        found = _json(await session.call_tool("search", {"query": "photosynthesis", "top_k": 1}))
        return tools, found

    tools, found = _session({"url": f"{url}/mcp"}, key)(steps)
    assert len(tools.tools) >= 4 and found["results"][0]["file_id"] == file.file_id
    rest = list(lines)
    assert rest[-1] == "data: [DONE]"
    text = "".join(json.loads(line.removeprefix("data: "))["choices"][0]["delta"].get("content") or ""
                   for line in first + rest[:-1] if json.loads(line.removeprefix("data: "))["choices"])
    assert text == "A slow streamed answer."

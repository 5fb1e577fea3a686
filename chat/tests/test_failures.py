import pytest

from chat.documents import Conversation
from chat.tests.helpers import ask, ask_json, make_conversation, make_model, sse_events

pytestmark = pytest.mark.django_db


def _turn(cid):
    return Conversation.objects.get(conversation_id=cid).turns[-1]


@pytest.mark.parametrize("mode, fragment", [
    ("401", "401"),
    ("500", "500"),
    ("garbage", "invalid response"),
])
def test_provider_error_is_an_error_event_and_failed_turn(api_client, fake_llm, mode, fragment):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode = mode
    response = ask(api_client, cid, "Q")
    assert response.status_code == 200
    events = sse_events(response)
    assert [n for n, _ in events] == ["citations", "error"]
    assert fragment in events[-1][1]["message"]
    turn = _turn(cid)
    assert turn.status == "failed" and fragment in turn.error
    assert "sk-test" not in turn.error


def test_refused_endpoint_fails_the_turn(api_client, refused_url):
    make_model(api_client, refused_url)
    cid = make_conversation(api_client)
    events = sse_events(ask(api_client, cid, "Q"))
    assert events[-1][0] == "error" and "connect" in events[-1][1]["message"].lower()
    assert _turn(cid).status == "failed"


def test_unresolvable_host_fails_the_turn(api_client):
    make_model(api_client, "http://no-such-host.invalid/v1")
    cid = make_conversation(api_client)
    events = sse_events(ask(api_client, cid, "Q"))
    assert events[-1][0] == "error"
    assert _turn(cid).status == "failed"


def test_json_answer_provider_error_is_502_with_ids(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode = "401"
    response = ask_json(api_client, cid, "Q")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "model_error" and "401" in error["message"]
    assert error["details"]["message_id"] == _turn(cid).message_id
    assert _turn(cid).status == "failed"


@pytest.mark.parametrize("mode", ["slow", "stall"])
def test_timeout_is_an_error_not_a_hang(api_client, fake_llm, settings, mode):
    settings.CHAT_LLM_TIMEOUT = 0.5
    fake_llm.delay = 3
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode = mode
    events = sse_events(ask(api_client, cid, "Q"))
    assert events[-1][0] == "error" and "timed out" in events[-1][1]["message"]
    turn = _turn(cid)
    assert turn.status == "failed"
    if mode == "stall":
        assert turn.ai_message == "The "  # the part received before the stall is kept


def test_client_going_away_cancels_the_turn(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.reply = "one two three four five"
    response = ask(api_client, cid, "Q")
    stream = iter(response.streaming_content)
    seen = b""
    while b"event: token" not in seen:
        seen += next(stream)
    response.close()
    turn = _turn(cid)
    assert turn.status == "cancelled"
    assert turn.ai_message == "one "


def test_client_gone_before_first_event_cancels_the_turn(api_client, fake_llm):
    import gc

    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    response = ask(api_client, cid, "Q")
    next(iter(response.streaming_content))  # only the ": stream open" comment
    response.close()
    del response
    gc.collect()
    assert _turn(cid).status == "cancelled"
    assert fake_llm.requests == []


def test_a_silent_model_gets_keepalives_and_closing_cancels_at_once(api_client, fake_llm, settings):
    import time

    settings.CHAT_SSE_KEEPALIVE = 0.1
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.mode, fake_llm.delay = "stall", 3
    response = ask(api_client, cid, "Q")
    stream = iter(response.streaming_content)
    seen = b""
    while b"event: token" not in seen:  # the first word comes before the stall
        seen += next(stream)
    assert next(stream) == b": keepalive\n\n"
    started = time.monotonic()
    response.close()
    assert time.monotonic() - started < 1
    turn = _turn(cid)
    assert turn.status == "cancelled" and turn.ai_message == "The "

import pytest

from chat.documents import Conversation
from chat.tests.helpers import ask, ask_json, make_conversation, make_model, sse_events

pytestmark = pytest.mark.django_db


def test_create_list_newest_first_paginated_rename_and_mark_read(api_client):
    ids = [make_conversation(api_client, f"c{i}") for i in range(3)]
    page = api_client.get("/api/v1/conversations/?page_size=2").json()
    assert page["count"] == 3
    assert [c["conversation_id"] for c in page["results"]] == [ids[2], ids[1]]
    assert "turns" not in page["results"][0]
    second = api_client.get("/api/v1/conversations/?page_size=2&page=2").json()
    assert [c["conversation_id"] for c in second["results"]] == [ids[0]]

    response = api_client.patch(f"/api/v1/conversations/{ids[0]}/", {"conversation_name": "Renamed",
                                                                     "is_read": False}, format="json")
    assert response.status_code == 200
    assert response.json()["conversation_name"] == "Renamed" and response.json()["is_read"] is False
    api_client.patch(f"/api/v1/conversations/{ids[0]}/", {"is_read": True}, format="json")
    assert api_client.get(f"/api/v1/conversations/{ids[0]}/").json()["is_read"] is True
    assert api_client.patch(f"/api/v1/conversations/{ids[0]}/", {"conversation_name": "  "},
                            format="json").status_code == 400


def test_other_users_conversation_is_404(api_client, other_client, fake_llm):
    make_model(other_client, fake_llm.url)
    cid = make_conversation(api_client)
    assert other_client.get(f"/api/v1/conversations/{cid}/").status_code == 404
    assert other_client.patch(f"/api/v1/conversations/{cid}/", {"is_read": True}, format="json").status_code == 404
    assert other_client.delete(f"/api/v1/conversations/{cid}/").status_code == 404
    assert ask_json(other_client, cid, "hi").status_code == 404
    assert other_client.get(f"/api/v1/conversations/{cid}/messages").status_code == 404
    assert other_client.get("/api/v1/conversations/").json()["count"] == 0
    assert fake_llm.requests == []


def test_streamed_answer_sends_history_and_parameters_and_stores_turn(api_client, fake_llm):
    model = make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    response = ask(api_client, cid, "What is the answer?")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done"
    assert "".join(data["text"] for name, data in events if name == "token") == fake_llm.reply
    done = events[-1][1]
    assert done["usage"] == fake_llm.usage
    first_id = done["message_id"]

    request = fake_llm.last
    assert request["model"] == "vision-model" and request["stream"] is True
    assert request["temperature"] == 0.3 and request["top_p"] == 0.8 and request["max_tokens"] == 256
    assert request["messages"] == [{"role": "system", "content": "You are LAYRA."},
                                   {"role": "user", "content": "What is the answer?"}]
    assert fake_llm.headers[-1]["authorization"] == "Bearer sk-test-000000000000abcd"

    fake_llm.reply = "Because."
    events = sse_events(ask(api_client, cid, "Why?"))
    assert events[-1][0] == "done"
    assert fake_llm.last["messages"][1:] == [
        {"role": "user", "content": "What is the answer?"},
        {"role": "assistant", "content": "The answer is 42."},
        {"role": "user", "content": "Why?"},
    ]
    detail = api_client.get(f"/api/v1/conversations/{cid}/").json()
    assert detail["is_read"] is False
    first, second = detail["turns"]
    assert first["message_id"] == first_id and first["parent_message_id"] is None
    assert second["parent_message_id"] == first_id
    assert first["status"] == "completed" and first["ai_message"] == "The answer is 42."
    assert first["prompt_tokens"] == 123 and first["completion_tokens"] == 7 and first["total_token"] == 130
    assert first["model_id"] == model["model_id"] and first["file_used"] == []


def test_json_answer_for_api_clients(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    response = ask_json(api_client, cid, "Hello?")
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == fake_llm.reply and body["status"] == "completed"
    assert body["usage"]["total_tokens"] == 130 and body["citations"] == []
    assert Conversation.objects.get(conversation_id=cid).turns[0].status == "completed"


def test_a_whole_answer_is_stored_once_with_its_outcome_a_streamed_one_before_its_first_token(api_client,
                                                                                              fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    stored_while_answering = []

    def reply(request: dict) -> str:  # runs while the model answers
        turns = Conversation.objects.get(conversation_id=cid).turns
        stored_while_answering.append([(t.user_message, t.status) for t in turns])
        return "A"

    fake_llm.reply = reply
    assert ask_json(api_client, cid, "Q1").json()["status"] == "completed"
    assert sse_events(ask(api_client, cid, "Q2"))[-1][0] == "done"
    assert stored_while_answering == [[], [("Q1", "completed"), ("Q2", "streaming")]]
    turns = api_client.get(f"/api/v1/conversations/{cid}/").json()["turns"]
    assert [(t["user_message"], t["ai_message"], t["status"]) for t in turns] == [("Q1", "A", "completed"),
                                                                                ("Q2", "A", "completed")]
    assert turns[1]["parent_message_id"] == turns[0]["message_id"]


def test_branching_edit_keeps_both_branches_and_history_follows_the_path(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.reply = "A1"
    q1 = ask_json(api_client, cid, "Q1").json()["message_id"]
    fake_llm.reply = "A2"
    q2 = ask_json(api_client, cid, "Q2").json()["message_id"]
    # edit Q2: a sibling of Q2 under Q1
    fake_llm.reply = "A2-edited"
    q2b = ask_json(api_client, cid, "Q2 edited", parent_message_id=q1).json()["message_id"]
    assert [m["content"] for m in fake_llm.last["messages"][1:]] == ["Q1", "A1", "Q2 edited"]
    # regenerate Q1's answer: a new root (explicit null), no history
    fake_llm.reply = "A1-again"
    body = ask_json(api_client, cid, "Q1", parent_message_id=None).json()
    assert body["parent_message_id"] is None
    assert [m["content"] for m in fake_llm.last["messages"][1:]] == ["Q1"]
    # no parent given: continue the latest turn (the regenerated root)
    fake_llm.reply = "after"
    assert ask_json(api_client, cid, "Next").json()["parent_message_id"] == body["message_id"]
    assert [m["content"] for m in fake_llm.last["messages"][1:]] == ["Q1", "A1-again", "Next"]
    turns = {t["message_id"]: t for t in api_client.get(f"/api/v1/conversations/{cid}/").json()["turns"]}
    assert turns[q2]["parent_message_id"] == q1 and turns[q2b]["parent_message_id"] == q1
    assert turns[q2]["ai_message"] == "A2" and turns[q2b]["ai_message"] == "A2-edited"

    branch = api_client.get(f"/api/v1/conversations/{cid}/messages/?leaf={q2}").json()["results"]
    assert [t["user_message"] for t in branch] == ["Q1", "Q2"]
    branch = api_client.get(f"/api/v1/conversations/{cid}/messages/?leaf={q2b}").json()["results"]
    assert [t["user_message"] for t in branch] == ["Q1", "Q2 edited"]
    # continue the original branch explicitly: history is Q1, Q2 only
    fake_llm.reply = "A3"
    ask_json(api_client, cid, "Q3", parent_message_id=q2)
    assert [m["content"] for m in fake_llm.last["messages"][1:]] == ["Q1", "A1", "Q2", "A2", "Q3"]


def test_unknown_parent_is_404(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    assert ask_json(api_client, cid, "Q", parent_message_id="nope").status_code == 404
    assert fake_llm.requests == []


def test_empty_question_is_400(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    assert ask(api_client, cid, "   ").status_code == 400
    assert ask_json(api_client, cid, "").status_code == 400
    assert fake_llm.requests == []


def test_no_selected_model_is_400_saying_what_to_do(api_client):
    cid = make_conversation(api_client)
    response = ask(api_client, cid, "Hello?")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_model_selected"
    assert "models/selected" in response.json()["error"]["message"]
    assert Conversation.objects.get(conversation_id=cid).turns == []


def test_other_users_model_id_is_404(api_client, other_client, fake_llm):
    theirs = make_model(other_client, fake_llm.url)
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    assert ask_json(api_client, cid, "Q", model_id=theirs["model_id"]).status_code == 404


def test_sse_client_gets_errors_as_an_event(api_client):
    cid = make_conversation(api_client)
    response = api_client.post(f"/api/v1/conversations/{cid}/messages", {"question": "Q"}, format="json",
                               HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 400
    assert response.content.decode().startswith("event: error")


def test_delete_conversation(api_client):
    cid = make_conversation(api_client)
    assert api_client.delete(f"/api/v1/conversations/{cid}/").status_code == 204
    assert api_client.get(f"/api/v1/conversations/{cid}/").status_code == 404


def test_token_counts_are_estimated_when_the_provider_sends_no_usage(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    fake_llm.usage = None
    fake_llm.reply = "one two three"
    # a whole answer (stream=false asks the model for its whole answer at once): counted by its words
    body = ask_json(api_client, cid, "Count?").json()
    assert fake_llm.last.get("stream") is False
    assert body["answer"] == "one two three"
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}
    assert Conversation.objects.get(conversation_id=cid).turns[0].completion_tokens == 3
    # a streamed answer: counted by its chunks (the fake sends one per word)
    fake_llm.reply = "four five six seven"
    done = dict(sse_events(ask(api_client, cid, "Count again?")))["done"]
    assert fake_llm.last.get("stream") is True
    assert done["usage"]["completion_tokens"] == 4


def test_sse_client_gets_a_json_answer_as_a_message_event(api_client, fake_llm):
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    response = api_client.post(f"/api/v1/conversations/{cid}/messages?stream=false", {"question": "Q"},
                               format="json", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response.content.decode().startswith("event: message")


def test_asking_is_rate_limited(api_client, fake_llm, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "chat": "2/60"}
    make_model(api_client, fake_llm.url)
    cid = make_conversation(api_client)
    assert ask_json(api_client, cid, "1").status_code == 200
    assert ask_json(api_client, cid, "2").status_code == 200
    response = ask_json(api_client, cid, "3")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert len(fake_llm.requests) == 2


def test_turn_context_reads_the_branch_to_the_parent_and_builds_only_its_turns(user, other_user):
    from chat.documents import Turn
    from chat.selectors import LATEST_TURN, conversation_turn_context
    from layra.errors import NotFound

    # a long main branch and a side branch off its second turn
    turns = [Turn(message_id=f"m{i}", parent_message_id=f"m{i - 1}" if i else None, user_message=f"Q{i}",
                  ai_message=f"A{i}", file_used=[{"file_id": "f", "page_number": i}], status="completed")
             for i in range(40)]
    turns.append(Turn(message_id="side", parent_message_id="m1", user_message="Qs", ai_message="As"))
    Conversation(conversation_id="c-ctx", username=user.username, temp_db="temp-kb", turns=turns).save()

    latest = conversation_turn_context(user=user, conversation_id="c-ctx", parent_message_id=LATEST_TURN)
    assert latest.parent_message_id == "side" and latest.temp_db == "temp-kb"
    assert [t.user_message for t in latest.history] == ["Q0", "Q1", "Qs"]
    assert all(isinstance(t, Turn) for t in latest.history)

    main = conversation_turn_context(user=user, conversation_id="c-ctx", parent_message_id="m39")
    assert [t.message_id for t in main.history] == [f"m{i}" for i in range(40)]
    assert main.history[5].ai_message == "A5" and main.history[5].file_used == [{"file_id": "f", "page_number": 5}]

    assert conversation_turn_context(user=user, conversation_id="c-ctx", parent_message_id=None).history == []
    with pytest.raises(NotFound):
        conversation_turn_context(user=user, conversation_id="c-ctx", parent_message_id="nope")
    with pytest.raises(NotFound):
        conversation_turn_context(user=other_user, conversation_id="c-ctx", parent_message_id=LATEST_TURN)

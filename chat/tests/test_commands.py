import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from chat.documents import Conversation, Turn, utcnow

pytestmark = pytest.mark.django_db


def test_stale_streaming_turns_are_failed(user, capsys):
    old = utcnow() - timedelta(hours=2)
    Conversation(conversation_id="c1", username=user.username, turns=[
        Turn(message_id="old", user_message="Q", status="streaming", timestamp=old),
        Turn(message_id="done", user_message="Q", status="completed", timestamp=old),
        Turn(message_id="new", user_message="Q", status="streaming"),
    ]).save()
    call_command("chat_fail_stale_turns", "--older-than", "600")
    assert json.loads(capsys.readouterr().out) == {"failed": 1}
    turns = {t.message_id: t.status for t in Conversation.objects.get(conversation_id="c1").turns}
    assert turns == {"old": "failed", "done": "completed", "new": "streaming"}


def test_conversation_ids_existing_for_operators(user):
    from chat.selectors import conversation_ids_existing

    Conversation(conversation_id="c1", username=user.username).save()
    Conversation(conversation_id="c2", username="someone-else").save()
    assert conversation_ids_existing(conversation_ids=["c1", "c2", "gone"]) == {"c1", "c2"}

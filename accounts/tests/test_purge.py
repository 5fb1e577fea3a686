import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import LoginSession, RefreshToken

pytestmark = pytest.mark.django_db


def test_purge_deletes_only_long_ended_sessions_and_tokens(login, user):
    old = login(user.username).json()
    live = login(user.username).json()
    long_ago = timezone.now() - timedelta(days=40)
    LoginSession.objects.filter(session_id=old["session_id"]).update(revoked_at=long_ago)
    RefreshToken.objects.filter(family=old["session_id"]).update(expires_at=long_ago)
    out = StringIO()
    call_command("purge_tokens", "--days", "30", stdout=out)
    assert json.loads(out.getvalue()) == {"refresh_tokens_deleted": 1, "sessions_deleted": 1}
    assert list(LoginSession.objects.values_list("session_id", flat=True)) == [live["session_id"]]
    assert RefreshToken.objects.filter(family=live["session_id"]).count() == 1

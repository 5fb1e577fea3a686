"""The per-request auth lookups (a hand-written join) return exactly what the ORM would, and only live rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors, services
from accounts.models import ApiKey, LoginSession

pytestmark = pytest.mark.django_db


def _same_as_orm(record, model):
    orm = model.objects.select_related("user").get(pk=record.pk)
    for field in model._meta.concrete_fields:
        assert getattr(record, field.attname) == getattr(orm, field.attname), field.name
    for field in type(orm.user)._meta.concrete_fields:
        assert getattr(record.user, field.attname) == getattr(orm.user, field.attname), field.name


def test_live_session_lookup_matches_the_orm_and_skips_revoked_or_foreign_sessions(user, other_user):
    session = LoginSession.objects.create(session_id="sid-live", user=user, last_activity=timezone.now(),
                                          ip="10.0.0.1")
    found = selectors.login_session_for_access(session_id="sid-live", user_id=str(user.pk))
    _same_as_orm(found, LoginSession)
    assert found.last_activity.tzinfo is not None  # aware, as the ORM gives it (session_touch compares it)
    assert found.user.is_active is True and found.user.username == user.username

    assert selectors.login_session_for_access(session_id="sid-live", user_id=str(other_user.pk)) is None
    assert selectors.login_session_for_access(session_id="sid-other", user_id=str(user.pk)) is None
    session.revoked_at = timezone.now()
    session.save()
    assert selectors.login_session_for_access(session_id="sid-live", user_id=str(user.pk)) is None


def test_api_key_lookup_matches_the_orm_and_skips_revoked_or_expired_keys(user):
    record, key = services.api_key_create(user=user, name="ci")
    found = selectors.api_key_for_key(key=key)
    _same_as_orm(found, ApiKey)
    assert selectors.api_key_for_key(key=key + "x") is None

    ApiKey.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert selectors.api_key_for_key(key=key) is None
    ApiKey.objects.filter(pk=record.pk).update(expires_at=None, revoked_at=timezone.now())
    assert selectors.api_key_for_key(key=key) is None

import pytest
from rest_framework.test import APIRequestFactory

from accounts.ratelimit import rate_limit
from layra.errors import RateLimited
from layra.redis import redis_client


def _request(ip="10.0.0.1", user=None):
    request = APIRequestFactory().get("/", REMOTE_ADDR=ip)
    if user is not None:
        request.user = user
    return request


def test_over_the_limit_raises_with_retry_after(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "search": "2/30"}
    rate_limit(request=_request(), scope="search")
    rate_limit(request=_request(), scope="search")
    with pytest.raises(RateLimited) as caught:
        rate_limit(request=_request(), scope="search")
    assert 1 <= caught.value.retry_after <= 30
    assert redis_client("ratelimit").get("ratelimit:ip:10.0.0.1:search") == "3"


def test_limits_are_per_ip_and_per_scope(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "search": "1/60", "chat": "1/60"}
    rate_limit(request=_request("10.0.0.1"), scope="search")
    rate_limit(request=_request("10.0.0.2"), scope="search")
    rate_limit(request=_request("10.0.0.1"), scope="chat")
    with pytest.raises(RateLimited):
        rate_limit(request=_request("10.0.0.1"), scope="search")


@pytest.mark.django_db
def test_authenticated_caller_is_keyed_by_user_id(settings, user):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "1/60"}
    rate_limit(request=_request("10.0.0.1", user=user), scope="upload")
    assert redis_client("ratelimit").get(f"ratelimit:user:{user.pk}:upload") == "1"
    with pytest.raises(RateLimited):
        rate_limit(request=_request("10.0.0.9", user=user), scope="upload")


def test_unknown_scope_uses_default(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "default": "1/60"}
    rate_limit(request=_request(), scope="something-new")
    with pytest.raises(RateLimited):
        rate_limit(request=_request(), scope="something-new")


def test_disabled_never_limits(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "search": "1/60"}
    settings.RATE_LIMIT_ENABLED = False
    for _ in range(5):
        rate_limit(request=_request(), scope="search")
    assert redis_client("ratelimit").get("ratelimit:ip:10.0.0.1:search") is None


def test_decorator_limits_a_view_method(settings):
    from accounts.ratelimit import rate_limited

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "chat": "1/60"}

    class View:
        @rate_limited("chat")
        def post(self, request):
            return "ran"

    assert View().post(_request()) == "ran"
    with pytest.raises(RateLimited):
        View().post(_request())

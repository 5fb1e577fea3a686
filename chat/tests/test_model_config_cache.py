"""The model-config cache (layra.cache): a Redis outage reads Mongo, and a fill racing with a write cannot put the
old config back."""

import pytest
from bson import json_util

from chat import selectors
from chat.documents import ModelConfig
from chat.services import model_create, model_update
from layra import cache
from layra.redis import redis_client

pytestmark = pytest.mark.django_db


def _model(user, **fields):
    return model_create(user=user, model_name="m", model_url="https://api.example.com/v1",
                        api_key="sk-cache-test-0000000001", temperature=0.2, **fields)


def test_a_fill_that_read_mongo_before_an_update_does_not_outlive_the_update(user):
    entry = _model(user)
    stale = ModelConfig.objects(username=user.username).first().to_json(  # a reader read Mongo ...
        json_options=json_util.RELAXED_JSON_OPTIONS)
    model_update(user=user, model_id=entry.model_id, temperature=1.5)  # ... an update drops the entry ...
    cache.fill(selectors.model_config_cache_key, {user.username: stale}, ttl=60)  # ... and the reader fills late
    assert selectors.model_get(user=user, model_id=entry.model_id).temperature == 1.5
    assert selectors.model_resolve(user=user).temperature == 1.5


def test_a_fill_after_the_tombstone_expired_is_served_again(user):
    entry = _model(user)
    redis_client("cache").delete(selectors.model_config_cache_key(user.username))  # the tombstone expires
    assert selectors.model_get(user=user, model_id=entry.model_id).temperature == 0.2  # fills
    ModelConfig.objects(username=user.username).update_one(set__models__0__temperature=0.9)  # behind its back
    assert selectors.model_get(user=user, model_id=entry.model_id).temperature == 0.2  # served from the cache


def test_model_configs_are_read_and_written_while_redis_is_down(services, user):
    entry = _model(user)
    redis_client("cache").delete(selectors.model_config_cache_key(user.username))
    assert selectors.model_resolve(user=user).temperature == 0.2  # cached now
    redis = services["redis"]
    redis.stop()
    try:
        assert selectors.model_resolve(user=user).model_name == "m"  # read from Mongo, not an error
        model_update(user=user, model_id=entry.model_id, temperature=1.5)  # the drop fails quietly
        assert selectors.model_resolve(user=user).temperature == 1.5
        second = _model(user, select=True)
        assert selectors.model_resolve(user=user).extra["model_id"] == second.model_id
    finally:
        redis.start()
    # back up (empty, as a restarted Redis is): the first read fills again
    assert selectors.model_resolve(user=user).extra["model_id"] == second.model_id
    assert redis_client("cache").get(selectors.model_config_cache_key(user.username))


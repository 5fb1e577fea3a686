"""Model API keys at rest: their own rotatable keys (FIELD_ENCRYPTION_KEYS), not SECRET_KEY."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chat import selectors
from chat.documents import ModelConfig
from chat.management.commands.rotate_field_keys import legacy_fernet
from layra import keyfiles
from layra.errors import ValidationError
from layra.mongo import database

pytestmark = pytest.mark.django_db

SECRET = "sk-live-rotate-1234567890WXYZ"


def _model(client) -> str:
    body = {"model_name": "m", "model_url": "https://api.example.com/v1", "api_key": SECRET}
    response = client.post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["model_id"]


def _stored(user) -> str:
    return database()["model_config"].find_one({"username": user.username})["models"][0]["api_key"]


def _resolved_key(user, model_id: str) -> str:
    from layra.redis import redis_client

    redis_client("cache").delete(selectors.model_config_cache_key(user.username))
    return selectors.model_resolve(user=user, model_id=model_id).api_key


def test_api_keys_do_not_depend_on_secret_key(api_client, user, settings):
    model_id = _model(api_client)
    settings.SECRET_KEY = keyfiles.new_secret_key()
    assert _resolved_key(user, model_id) == SECRET


def test_rotation_re_encrypts_with_the_first_key_and_the_old_one_can_go(api_client, user, settings, capsys):
    model_id = _model(api_client)
    old = list(settings.FIELD_ENCRYPTION_KEYS)
    new = keyfiles.new_field_key()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    with pytest.raises(ValidationError, match="cannot be decrypted"):
        _resolved_key(user, model_id)  # the stored token is the old key's

    settings.FIELD_ENCRYPTION_KEYS = [new, *old]  # new first: encrypts; the old one still decrypts
    assert _resolved_key(user, model_id) == SECRET
    before = _stored(user)
    call_command("rotate_field_keys", "--dry-run")
    assert "would re-encrypt 1 API key(s)" in capsys.readouterr().out
    assert _stored(user) == before
    call_command("rotate_field_keys")
    assert "re-encrypted 1 API key(s); 0 could not be decrypted" in capsys.readouterr().out
    assert _stored(user) != before and SECRET not in _stored(user)

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key removed
    assert _resolved_key(user, model_id) == SECRET


def test_rotation_reads_keys_of_older_versions_and_names_what_it_cannot_read(api_client, user, settings,
                                                                             tmp_path, capsys):
    model_id = _model(api_client)
    old_secret = keyfiles.new_secret_key()
    legacy_token = legacy_fernet(old_secret).encrypt(SECRET.encode()).decode()
    ModelConfig.objects(username=user.username, models__model_id=model_id).update_one(
        set__models__S__api_key=legacy_token)
    with pytest.raises(CommandError, match="1 API key"):
        call_command("rotate_field_keys")
    assert _stored(user) == legacy_token  # nothing written for what it could not read

    secret_file = tmp_path / "old_secret_key"
    secret_file.write_text(old_secret)
    call_command("rotate_field_keys", "--legacy-secret-key-file", str(secret_file))
    assert "re-encrypted 1 API key(s)" in capsys.readouterr().out
    assert _resolved_key(user, model_id) == SECRET

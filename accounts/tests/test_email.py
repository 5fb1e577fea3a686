"""Email: optional, stored lower-cased (NULL when empty), unique whatever its case; sign in by username or email;
duplicates reported by a command and refused by the migration."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"


def _register(client, username, email):
    return client.post(REGISTER, {"username": username, "password": "a-Long-enough-pass", "email": email},
                       format="json")


def test_email_is_stored_lower_case_and_null_when_empty(anon_client):
    assert _register(anon_client, "ann", "Ann@Example.COM").status_code == 201
    assert _register(anon_client, "bob", "").status_code == 201
    assert _register(anon_client, "cid", "").status_code == 201  # two accounts without email are fine
    assert User.objects.get(username="ann").email == "ann@example.com"
    assert User.objects.get(username="bob").email is None
    assert anon_client.post("/api/v1/auth/login/", {"username": "bob", "password": "a-Long-enough-pass"},
                            format="json").status_code == 200


def test_email_taken_in_another_case_is_409(anon_client, user):
    response = _register(anon_client, "newcomer", user.email.upper())
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "email_taken"
    assert not User.objects.filter(username="newcomer").exists()


def test_profile_email_taken_is_409_and_own_email_is_fine(api_client, other_user):
    response = api_client.patch("/api/v1/auth/me/", {"email": other_user.email.title()}, format="json")
    assert response.status_code == 409
    assert api_client.patch("/api/v1/auth/me/", {"email": api_client.user.email.upper()},
                            format="json").status_code == 200
    api_client.user.refresh_from_db()
    assert api_client.user.email == api_client.user.email.lower()


def test_the_database_refuses_a_duplicate_whatever_the_case(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="twin", email=user.email.upper())


def test_sign_in_by_username_or_email(login, user):
    assert login(user.username).status_code == 200
    by_email = login(user.email.upper())
    assert by_email.status_code == 200, by_email.content
    assert login(user.email, password="wrong-password-123").status_code == 401
    assert login("nobody@example.com").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_migration_refuses_to_apply_while_duplicates_exist(capsys):
    """Back to the schema before the unique index, two accounts share an address (different case): the command
    reports them, the migration stops with their names, changes nothing, and applies once one is changed."""
    before, target = [("accounts", "0003_sessions_tokens_api_keys")], [("accounts", "0004_email_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            for name, email in (("dup1", "Same@Example.com"), ("dup2", "same@example.com"), ("solo", "")):
                cursor.execute(
                    "INSERT INTO users (password, is_superuser, username, first_name, last_name, email, is_staff, "
                    "is_active, date_joined, password_migration_required, created_at, updated_at) "
                    "VALUES ('x', 0, %s, '', '', %s, 0, 1, NOW(), 0, NOW(), NOW())", [name, email])
        with pytest.raises(CommandError) as reported:
            call_command("email_duplicates")
        assert reported.value.returncode == 1
        assert "same@example.com: dup1, dup2" in capsys.readouterr().out
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match="dup1, dup2"):
            executor.migrate(target)
        executor = MigrationExecutor(connection)
        assert ("accounts", "0004_email_unique") not in executor.loader.applied_migrations
        with connection.cursor() as cursor:
            cursor.execute("UPDATE users SET email = 'dup2@example.com' WHERE username = 'dup2'")
        executor.migrate(target)
        call_command("email_duplicates")  # none left: exit status 0
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert dict(User.objects.values_list("username", "email")) == {
        "dup1": "same@example.com", "dup2": "dup2@example.com", "solo": None}

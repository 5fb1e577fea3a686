"""Usernames are validated at registration, in the admin and on import: no path characters, no leading dot."""

import pytest

from accounts.models import User
from accounts.user_import import users_import

pytestmark = pytest.mark.django_db

BAD = ["..", ".hidden", "a/b", "a\\b", "x..y", "nul\x00byte", "tab\tname", "new\nline", "ends.", "-dash",
       "a", "x" * 65, "ｆｕｌｌ", "bad name!", "zero\u200bwidth"]
GOOD = ["alice", "a.b-c_d@e+f", "Zoë", "名前", "_under", "o'clock".replace("'", "")]


@pytest.mark.parametrize("username", BAD, ids=[repr(b) for b in BAD])
def test_bad_usernames_are_refused_with_400(anon_client, username):
    response = anon_client.post("/api/v1/auth/register", {"username": username, "password": "a-Long-enough-pass"},
                                format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "username" in error["details"]
    assert not User.objects.filter(username=username.strip()).exists()


@pytest.mark.parametrize("username", GOOD)
def test_plain_usernames_are_accepted(anon_client, username):
    response = anon_client.post("/api/v1/auth/register", {"username": username, "password": "a-Long-enough-pass"},
                                format="json")
    assert response.status_code == 201, response.content
    assert User.objects.filter(username=username).exists()


def test_admin_add_form_refuses_a_bad_username(admin_client):
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "..", "password1": "a-Long-enough-pass", "password2": "a-Long-enough-pass",
        "usable_password": "true",
    })
    assert response.status_code == 200  # the form again, with the error
    assert b"cannot start with a dot" in response.content
    assert not User.objects.filter(username="..").exists()


def test_admin_keeps_an_older_odd_name_unless_it_is_renamed(admin_client):
    odd = User.objects.create_user(username="..", password="a-Long-enough-pass")  # made before the rules
    page = admin_client.get(f"/admin/accounts/user/{odd.pk}/change/")
    assert page.status_code == 200


def test_import_refuses_path_like_usernames():
    digest = "0" * 64
    report = users_import(rows=[{"username": "..", "password_hash": digest, "salt": "s"},
                                {"username": "a/b", "password_hash": digest, "salt": "s"},
                                {"username": "fine.name", "password_hash": digest, "salt": "s"}])
    assert report["created"] == 1 and report["invalid"] == 2
    assert all("username is not valid" in e["error"] for e in report["errors"])
    assert list(User.objects.values_list("username", flat=True)) == ["fine.name"]

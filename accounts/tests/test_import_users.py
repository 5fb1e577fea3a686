import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _digest(salt, password=PASSWORD):
    return hashlib.sha256((salt + password).encode()).hexdigest()


def _run(path, *args):
    out = StringIO()
    call_command("import_users", str(path), *args, stdout=out)
    return json.loads(out.getvalue())


ROWS = [
    {"username": "ann", "email": "ann@example.com", "password_hash": _digest("a1"), "salt": "a1"},
    {"username": "ben", "email": "bad-email", "hashed_password": _digest("b2"), "salt": "b2"},
    {"username": "ann", "email": "", "password_hash": _digest("x"), "salt": "x"},
    {"username": "bad name!", "password_hash": _digest("c"), "salt": "c"},
    {"username": "dan", "password_hash": "not-hex", "salt": "d"},
    {"username": "eve", "password_hash": _digest("e$"), "salt": "e$"},
]


def test_import_json_creates_legacy_users_and_reports(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps(ROWS))
    report = _run(path)
    assert (report["created"], report["skipped_existing"], report["invalid"]) == (2, 0, 4)
    assert sorted(e["row"] for e in report["errors"]) == [3, 4, 5, 6]
    assert report["warnings"] == [{"row": 2, "username": "ben", "warning": "invalid email dropped"}]
    ann = User.objects.get(username="ann")
    assert ann.password == f"legacy_sha256$a1${_digest('a1')}" and ann.password_migration_required
    assert ann.check_password(PASSWORD) is True  # the legacy hasher verifies it
    assert User.objects.get(username="ben").email is None  # no email: NULL (the unique column)


def test_import_is_idempotent(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": ROWS[:2]}))
    assert _run(path)["created"] == 2
    again = _run(path)
    assert (again["created"], again["skipped_existing"]) == (0, 2)
    assert User.objects.count() == 2


def test_import_csv_then_login_upgrades(tmp_path, anon_client):
    path = tmp_path / "users.csv"
    path.write_text(f"username,email,password_hash,salt\nfay,fay@example.com,{_digest('f9')},f9\n")
    assert _run(path)["created"] == 1
    response = anon_client.post("/api/v1/auth/login", {"username": "fay", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    fay = User.objects.get(username="fay")
    assert fay.password.startswith("argon2$") and not fay.password_migration_required


def test_update_refreshes_hash_only_for_users_still_migrating(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(f"username,password_hash,salt\ngus,{_digest('g1')},g1\nhal,{_digest('h1')},h1\n")
    _run(path)
    hal = User.objects.get(username="hal")
    hal.set_password("upgraded-already-1")
    hal.password_migration_required = False
    hal.save()
    path.write_text(f"username,password_hash,salt\ngus,{_digest('g2')},g2\nhal,{_digest('h2')},h2\n")
    dry = _run(path, "--update", "--dry-run")
    assert dry["updated"] == 1 and dry["dry_run"] is True
    assert User.objects.get(username="gus").password.endswith(_digest("g1"))
    report = _run(path, "--update")
    assert (report["updated"], report["skipped_existing"]) == (1, 1)
    assert User.objects.get(username="gus").password.endswith(_digest("g2"))
    assert User.objects.get(username="hal").check_password("upgraded-already-1")


def test_missing_or_broken_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError):
        call_command("import_users", str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(CommandError):
        call_command("import_users", str(broken))

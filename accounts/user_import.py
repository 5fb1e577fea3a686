"""Import users from the original system's users table (accounts' one-off migration path)."""

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.hashers import LegacySHA256PasswordHasher
from accounts.models import User
from accounts.validators import username_problems

_HASH_FIELDS = ("password_hash", "hashed_password", "password")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def users_import(*, rows: Iterable[dict], update: bool = False, dry_run: bool = False) -> dict:
    """Create users from the original users table (username, email, hex SHA256(salt + password), salt).

    Idempotent: an existing username is skipped (with `update`, a user still waiting for migration gets
    the file's hash again). Imported users carry a legacy hash and `password_migration_required`; their
    first login re-hashes with argon2. Returns a report: counts plus the problem rows.
    """
    report = {"created": 0, "updated": 0, "skipped_existing": 0, "invalid": 0, "errors": [], "warnings": []}
    seen: set[str] = set()
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            report["invalid"] += 1
            report["errors"].append({"row": number, "username": "", "error": "row is not an object"})
            continue
        row = {str(k).strip().lower(): ("" if v is None else str(v).strip()) for k, v in raw.items()}
        username = row.get("username", "")
        problem = _import_row_problem(row, username, seen)
        if problem:
            report["invalid"] += 1
            report["errors"].append({"row": number, "username": username, "error": problem})
            continue
        seen.add(username.lower())
        digest = next(row[f] for f in _HASH_FIELDS if row.get(f))
        encoded = f"{LegacySHA256PasswordHasher.algorithm}${row.get('salt', '')}${digest.lower()}"
        email = row.get("email", "")
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                report["warnings"].append({"row": number, "username": username, "warning": "invalid email dropped"})
                email = ""
        if email and User.objects.filter(email=email.strip().lower()).exclude(username__iexact=username).exists():
            report["warnings"].append({"row": number, "username": username,
                                       "warning": "email already used by another account: dropped"})
            email = ""
        existing = User.objects.filter(username__iexact=username).first()
        if existing is not None:
            if update and existing.password_migration_required and existing.password != encoded:
                report["updated"] += 1
                if not dry_run:
                    existing.password = encoded
                    existing.save(update_fields=["password", "updated_at"])
            else:
                report["skipped_existing"] += 1
            continue
        report["created"] += 1
        if not dry_run:
            try:
                with transaction.atomic():
                    User.objects.create(username=username, email=email, password=encoded,
                                        password_migration_required=True)
            except IntegrityError:
                report["created"] -= 1
                report["skipped_existing"] += 1
    report["dry_run"] = dry_run
    return report


def _import_row_problem(row: dict, username: str, seen: set[str]) -> str:
    if not username:
        return "username is missing"
    problems = username_problems(username)
    if problems:
        return f"username is not valid: {problems[0]}"
    if username.lower() in seen:
        return "duplicate username in the file"
    digest = next((row[f] for f in _HASH_FIELDS if row.get(f)), "")
    if not _HEX64.match(digest):
        return "password hash is not a hex SHA-256 digest"
    if "$" in row.get("salt", ""):
        return "salt contains '$'"
    return ""

"""The process's secrets: where settings read them, what makes one unusable, and how `make run` makes them.

No Django here: settings import it, and `python -m layra.keyfiles DATA_DIR` (scripts/run.sh) runs it before any
settings exist.

- `SECRET_KEY` signs sessions and, unless JWT_SIGNING_KEY is set, the API's JWTs.
- `FIELD_ENCRYPTION_KEYS` (comma-separated Fernet keys) encrypt model API keys at rest: the first encrypts,
  every one decrypts, so a new key goes first and the old ones stay until `manage.py rotate_field_keys` has
  re-encrypted everything.

Each is read from its variable, else from the file its `<NAME>_FILE` variable names, else from
`DATA_DIR/secrets/<name>` (what `make run` writes on first start, mode 0600).
"""

import base64
import binascii
import hashlib
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

SECRET_KEY_FILE = "secret_key"
FIELD_KEYS_FILE = "field_encryption_keys"

# SHA-256 of keys that were published (literal defaults in earlier versions of this project): a deployment that
# still uses one signs tokens anyone can forge. Hashes, so the keys themselves are no longer in the source.
KNOWN_KEY_SHA256 = frozenset({
    "005d3ff8e938fc41aa205f761374359042b21d437cdf4b0b12e3c8aef54b17a3",
})
DJANGO_INSECURE_PREFIX = "django-insecure-"


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_secret(*, environ: Mapping[str, str], name: str, data_dir: Path | None = None) -> str:
    """`name` from the environment, else from the file `<name>_FILE` names, else (with `data_dir`) from
    DATA_DIR/secrets/<name in lower case>."""
    value = environ.get(name, "").strip()
    if value:
        return value
    path = environ.get(f"{name}_FILE", "").strip()
    if not path and data_dir is None:
        return ""
    candidate = Path(path) if path else data_dir / "secrets" / name.lower()
    if path or candidate.is_file():
        try:
            return candidate.read_text().strip()
        except OSError as exc:
            raise RuntimeError(f"{name}_FILE {candidate} cannot be read: {exc.strerror}") from None
    return ""


def secret_key_problem(key: str) -> str | None:
    """Why `key` must not sign anything in production, or None."""
    if not key:
        return "is not set"
    if key_sha256(key) in KNOWN_KEY_SHA256:
        return "is a published default (anyone can forge tokens signed with it)"
    if key.startswith(DJANGO_INSECURE_PREFIX):
        return f"starts with {DJANGO_INSECURE_PREFIX!r} (a development key)"
    if len(key) < 50 or len(set(key)) < 5:
        return "is too weak (at least 50 characters, at least 5 different ones)"
    return None


def field_keys_parse(value: str) -> list[str]:
    """Comma- (or line-) separated Fernet keys; ValueError names a key that is not one."""
    keys = [k.strip() for k in value.replace("\n", ",").split(",") if k.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64 bytes)")
    return keys


def new_secret_key() -> str:
    return secrets.token_urlsafe(64)


def new_field_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def new_password() -> str:
    return secrets.token_urlsafe(12)


def write_private(path: Path, value: str) -> None:
    """Write `value` to a new file readable by its owner only (0600), in a directory only the owner enters."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")


def ensure_key_files(data_dir: Path) -> dict[str, Path]:
    """Make DATA_DIR/secrets/{secret_key,field_encryption_keys} (0600) when missing; keep existing ones."""
    made = {}
    for name, factory in ((SECRET_KEY_FILE, new_secret_key), (FIELD_KEYS_FILE, new_field_key)):
        path = data_dir / "secrets" / name
        if not path.exists():
            write_private(path, factory())
        path.chmod(0o600)
        made[name] = path
    return made


if __name__ == "__main__":  # python -m layra.keyfiles DATA_DIR
    for name, path in ensure_key_files(Path(sys.argv[1] if len(sys.argv) > 1 else "data")).items():
        print(f"{name}: {path}")

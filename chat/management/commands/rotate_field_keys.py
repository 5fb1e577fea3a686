"""Re-encrypt every stored model API key with the first of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart, run this, then
remove the old keys. `--legacy-secret-key-file` also reads keys that older versions encrypted with a key derived
from the SECRET_KEY of that time (the file holds that old SECRET_KEY)."""

import base64
import hashlib
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.management.base import BaseCommand, CommandError

from chat import crypto
from chat.documents import ModelConfig
from chat.services import model_config_invalidate


def legacy_fernet(secret_key: str) -> Fernet:
    """The key older versions derived from SECRET_KEY when no encryption key was set."""
    digest = hashlib.sha256(f"layra-field-encryption:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class Command(BaseCommand):
    help = "Re-encrypt stored model API keys with the first FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
        parser.add_argument("--legacy-secret-key-file", type=Path, default=None,
                            help="a file holding the SECRET_KEY older versions derived the encryption key from")

    def handle(self, *args, dry_run: bool, legacy_secret_key_file: Path | None, **options):
        current = crypto.fernet()
        readers = crypto.fernets()
        if legacy_secret_key_file is not None:
            try:
                legacy = legacy_secret_key_file.read_text().strip()
            except OSError as exc:
                raise CommandError(f"cannot read {legacy_secret_key_file}: {exc.strerror}") from None
            readers.append(legacy_fernet(legacy))
        reader = MultiFernet(readers)
        rotated = unreadable = 0
        for config in ModelConfig.objects(models__api_key__ne="").only("username", "models"):
            for entry in config.models:
                if not entry.api_key:
                    continue
                try:
                    plain = reader.decrypt(entry.api_key.encode())
                except InvalidToken:
                    unreadable += 1
                    self.stderr.write(f"{config.username} / {entry.model_id}: no key decrypts the stored API key")
                    continue
                rotated += 1
                if not dry_run:
                    ModelConfig.objects(username=config.username, models__model_id=entry.model_id).update_one(
                        set__models__S__api_key=current.encrypt(plain).decode())
                    model_config_invalidate(username=config.username)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{verb} {rotated} API key(s); {unreadable} could not be decrypted")
        if unreadable:
            raise CommandError(f"{unreadable} API key(s) could not be decrypted with any key given")

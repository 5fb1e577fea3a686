"""Password hashers: Argon2id with settings-driven cost, and the original system's format.

The original format is hex SHA256 of salt + password, stored as `legacy_sha256$<salt>$<hexdigest>`;
Django upgrades it (and any Argon2 hash made with other costs) to the first hasher on the next login.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare

from accounts.hash_pool import run_hash


class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id with the OWASP cost by default (19 MiB, 2 passes, 1 lane: ~25 ms here).

    Django's default (100 MiB, 8 lanes) costs ~160 ms of CPU per login on a 2-core host, so a burst of logins
    starves every other request. Same `argon2` algorithm name: existing hashes verify and are re-hashed. The
    work runs on the low-priority hash pool (accounts.hash_pool) so that logins yield the CPU to API reads.
    """

    def encode(self, password, salt):
        return run_hash(super().encode, password, salt)

    def verify(self, password, encoded):
        return run_hash(super().verify, password, encoded)

    @property
    def time_cost(self):
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self):
        return settings.ARGON2_MEMORY_COST_KIB

    @property
    def parallelism(self):
        return settings.ARGON2_PARALLELISM


class LegacySHA256PasswordHasher(BasePasswordHasher):
    algorithm = "legacy_sha256"

    def encode(self, password: str, salt: str) -> str:
        if "$" in salt:
            raise ValueError("salt must not contain '$'")
        digest = hashlib.sha256((salt + password).encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "salt": salt, "hash": digest}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return True

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass

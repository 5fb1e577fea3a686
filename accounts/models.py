from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A user of the platform. `username` is the owner key used by every Mongo document."""

    # Stored lower-cased, NULL when empty (email_normalize): unique (so case-insensitively unique) and indexed.
    email = models.EmailField(null=True, blank=True, unique=True)
    password_migration_required = models.BooleanField(
        default=False, help_text="Imported with a legacy SHA256+salt hash; cleared after the first login."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "users"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username

    def save(self, *args, **kwargs):
        self.email = email_normalize(self.email)
        super().save(*args, **kwargs)


def email_normalize(email: str | None) -> str | None:
    """The stored form of an email address: stripped and lower-cased; None for an empty one."""
    email = (email or "").strip().lower()
    return email or None


class AuditLog(models.Model):
    """Who did what to which resource, when and from where. Written by accounts.services.audit_log_record."""

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True, default="", db_index=True,
                                help_text="The acting user's name at the time (kept when the user is deleted).")
    action = models.CharField(max_length=64, db_index=True)
    resource_type = models.CharField(max_length=64, blank=True, default="")
    resource_id = models.CharField(max_length=128, blank=True, default="")
    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "audit_log"
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["resource_type", "resource_id"], name="audit_resource_idx")]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}"


class LoginSession(models.Model):
    """One login: the family of refresh tokens it issues, and the access tokens they mint, live and die with it."""

    session_id = models.CharField(max_length=36, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    started_at = models.DateTimeField(auto_now_add=True)
    last_activity = models.DateTimeField(db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoke_reason = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "login_sessions"
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user} {self.session_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RefreshToken(models.Model):
    """A refresh token by its hash only. `family` is the login session's id; spending one mints the next."""

    jti = models.CharField(max_length=36, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token.")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    session = models.ForeignKey(LoginSession, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.CharField(max_length=36, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    spent_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "refresh_tokens"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user} {self.jti}"


class ApiKey(models.Model):
    """A key for programmatic access, shown once at creation and stored as its SHA-256 only."""

    key_id = models.CharField(max_length=36, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user} {self.name} ({self.prefix}…)"


class AccountDeletion(models.Model):
    """An account being deleted: the user is deactivated at once, the cascade (operations.account_deletion) runs
    in the background. Operators see these in the admin; the user, deactivated, cannot. `username` is what the
    cascade needs to find the user's documents; it is cleared when the cascade completes (no personal content
    stays behind, `user_ref` is the deleted row's id)."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    deletion_id = models.CharField(max_length=36, unique=True, editable=False)
    user_ref = models.BigIntegerField(db_index=True, help_text="The deleted user's id (the row itself goes).")
    username = models.CharField(max_length=150, blank=True, default="",
                                help_text="Cleared when the cascade completes.")
    requested_by = models.CharField(max_length=16, help_text="self (the user) or admin (an operator).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="What the cascade removed, per store.")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "account_deletions"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"account {self.user_ref} ({self.state})"

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A user of the platform. `username` is the owner key used by every Mongo document."""

    email = models.EmailField(blank=True, default="")
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

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

"""Email becomes a normalised (lower-case) column, NULL when empty, with a plain unique index.

Refuses to apply while two accounts share an address (any case): `python manage.py email_duplicates` lists them.
Nothing is merged or dropped silently."""

from django.db import migrations, models

from accounts.email_duplicates import email_duplicates


def refuse_duplicates(apps, schema_editor):
    found = email_duplicates(apps.get_model("accounts", "User"))
    if found:
        listed = "; ".join(f"{address}: {', '.join(names)}" for address, names in list(found.items())[:20])
        raise RuntimeError(
            f"{len(found)} email address(es) are held by more than one account ({listed}). Run "
            "`python manage.py email_duplicates`, change or clear those emails, then migrate again.")


def normalise(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for pk, email in User.objects.values_list("pk", "email"):
        stored = (email or "").strip().lower() or None
        if stored != email:
            User.objects.filter(pk=pk).update(email=stored)


def denormalise(apps, schema_editor):
    apps.get_model("accounts", "User").objects.filter(email__isnull=True).update(email="")


class Migration(migrations.Migration):
    atomic = False  # MySQL DDL is not transactional: each step stands alone, the check runs first

    dependencies = [
        ("accounts", "0003_sessions_tokens_api_keys"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.AlterField(model_name="user", name="email",
                              field=models.EmailField(blank=True, max_length=254, null=True)),
        migrations.RunPython(normalise, denormalise),
        migrations.AlterField(model_name="user", name="email",
                              field=models.EmailField(blank=True, max_length=254, null=True, unique=True)),
    ]

"""Demo accounts: alice (staff, can use the admin site), bob, and the service account
svc-billing (made exempt from 2FA by `manage.py mfa exempt svc-billing`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import migrations

DEMO_USERS = [
    ("alice", "alice@example.com", "alice-password", True),
    ("bob", "bob@example.com", "bob-password", False),
    ("svc-billing", "billing@example.com", "svc-billing-password", False),
]


def create_users(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("auth", "User")
    for username, email, password, staff in DEMO_USERS:
        user_model.objects.get_or_create(
            username=username,
            defaults={
                "email": email,
                "password": make_password(password),
                "is_staff": staff,
                "is_superuser": staff,
            },
        )


def remove_users(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "User").objects.filter(username__in=[u[0] for u in DEMO_USERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_users, remove_users)]

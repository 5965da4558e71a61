"""carol: support staff, a helpdesk administrator of two-step verification (staff, not a
superuser): she may look users up in the Django admin's user list and reset, unlock or sign
out one user, not change what reaches everyone nor exempt accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import migrations


def create_carol(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("auth", "User")
    permission = apps.get_model("auth", "Permission")
    content_type = apps.get_model("contenttypes", "ContentType")
    carol, _ = user_model.objects.get_or_create(
        username="carol",
        defaults={
            "email": "carol@example.com",
            "password": make_password("carol-password"),
            "is_staff": True,
            "is_superuser": False,
        },
    )
    users, _ = content_type.objects.get_or_create(app_label="auth", model="user")
    view, _ = permission.objects.get_or_create(
        content_type=users, codename="view_user", defaults={"name": "Can view user"}
    )
    carol.user_permissions.add(view)


def remove_carol(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "User").objects.filter(username="carol").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("demo_site", "0001_demo_users"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_carol, remove_carol)]

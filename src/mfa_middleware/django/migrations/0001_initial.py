"""The table of 2FA documents (`models.Document`)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Document",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=64)),
                ("part", models.CharField(max_length=255)),
                ("name", models.CharField(blank=True, max_length=255)),
                ("doc", models.TextField()),
                ("expires", models.FloatField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "2FA record",
                "indexes": [models.Index(fields=["expires"], name="mfa_document_expires")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("kind", "part", "name"), name="mfa_document_key"
                    )
                ],
            },
        ),
    ]

"""The 2FA state in the project's own database: one table of small JSON documents.

`DjangoStore` keeps the store contract's documents here, so 2FA state lives beside the
users it belongs to: the same backups, replicas and migrations as the rest of the project.
"""

from __future__ import annotations

from django.db import models


class Document(models.Model):
    """One store document: `Key(kind, part, name)` and its JSON text, with an optional expiry
    (seconds since the epoch, by the middleware's clock) that reads filter on."""

    kind: models.CharField[str, str] = models.CharField(max_length=64)
    # the user's id; "_" for global records
    part: models.CharField[str, str] = models.CharField(max_length=255)
    name: models.CharField[str, str] = models.CharField(max_length=255, blank=True)
    # compact JSON: the store is opaque to its documents
    doc: models.TextField[str, str] = models.TextField()
    expires: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True
    )

    class Meta:
        verbose_name = "2FA record"
        constraints = (
            models.UniqueConstraint(fields=["kind", "part", "name"], name="mfa_document_key"),
        )
        indexes = (models.Index(fields=["expires"], name="mfa_document_expires"),)

    def __str__(self) -> str:
        return f"{self.kind}:{self.part}:{self.name}"

"""Who the app says the caller is, reduced to the facts 2FA decisions need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user as the wrapped app identified them.

    `auth_method` says how the app authenticated the request ("session" for a browser login,
    "token" for an API key or bearer token); token principals get JSON answers, never redirects.
    """

    id: str
    username: str = ""
    email: str | None = None
    phone: str | None = None
    groups: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    auth_method: str = "session"

    @property
    def display_name(self) -> str:
        return self.username or self.email or self.id

    @property
    def is_token(self) -> bool:
        return self.auth_method != "session"

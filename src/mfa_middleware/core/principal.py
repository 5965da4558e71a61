"""Who the app says the caller is, reduced to the facts 2FA decisions need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user as the wrapped app identified them.

    `id` is the stable user id that 2FA state is kept under. `username` is what the pages show
    (a display name is fine). `login_name` is a unique login name the app vouches for (Django's
    USERNAME_FIELD): rules' `users` match it as well as the id; never a display name, which a
    user may set to a service account's name. `auth_method` says how the app authenticated the
    request ("session" for a browser login, "token" for an API key or bearer token); token
    principals get JSON answers, never redirects, and only they can be exempt by default.
    """

    id: str
    username: str = ""
    login_name: str | None = None
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

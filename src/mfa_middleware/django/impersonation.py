"""django-hijack's "login as another user", for `MFAConfig.is_impersonating`:

    MFA_MIDDLEWARE = {"is_impersonating": hijacker, ...}  # from this module

While a staff member has hijacked a user, django-hijack keeps the staff member's primary key
in the session (`hijack_history`, its last entry). The middleware then lets the session pass on
the staff member's own second factor (their MFA cookie, made before they took the user over),
refuses the user's 2FA pages with 403, and records every request as an `impersonated_request`
event naming both (see `mfa_middleware.core.impersonation`). Releasing the user logs the staff
member in again with a new session, so they confirm it's them with their own factor.
"""

from __future__ import annotations

from typing import Any


def hijacker(request: Any) -> str | None:
    """The primary key of the user who hijacked this session (django-hijack), or None."""
    session = getattr(request, "session", None)
    history = session.get("hijack_history") if session is not None else None
    if not history:
        return None
    return str(history[-1])

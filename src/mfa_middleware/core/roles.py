"""Who may do what on the admin pages and in the Django admin: two tiers of administrators.

A helpdesk administrator (`MFAConfig.is_admin`) looks users up and helps one user at a time:
resets their 2FA, unlocks them after wrong codes, signs them out everywhere, sets a phone
number for them. Changes that reach everyone or weaken 2FA for an account (the mode, the
session lifetime, clearing all sessions, exempting an account) need a superadmin
(`MFAConfig.is_superadmin`; without one every administrator is a superadmin, as before the
tiers existed). The CLI has no tiers: whoever can run `mfa-admin` against the store can do
everything it offers.
"""

from __future__ import annotations

from collections.abc import Callable

from mfa_middleware.core.principal import Principal

HELPDESK = "helpdesk"
SUPERADMIN = "superadmin"
RANKS = {HELPDESK: 1, SUPERADMIN: 2}

NEEDS: dict[str, str] = {
    "view": HELPDESK,
    "reset": HELPDESK,
    "unlock": HELPDESK,
    "logout": HELPDESK,
    "set_phone": HELPDESK,
    "exempt": SUPERADMIN,
    "unexempt": SUPERADMIN,
    "mode": SUPERADMIN,
    "lifetime": SUPERADMIN,
    "logout_all": SUPERADMIN,
}
"""The role each action needs; an action not listed needs a superadmin."""

Check = Callable[[Principal], bool]


def role_of(
    principal: Principal, is_admin: Check | None, is_superadmin: Check | None
) -> str | None:
    """The principal's role: None (no administrator), HELPDESK or SUPERADMIN."""
    if is_admin is None or not is_admin(principal):
        return None
    if is_superadmin is None or is_superadmin(principal):
        return SUPERADMIN
    return HELPDESK


def allowed(role: str | None, action: str) -> bool:
    """Whether `role` may do `action`."""
    if role is None:
        return False
    return RANKS[role] >= RANKS[NEEDS.get(action, SUPERADMIN)]

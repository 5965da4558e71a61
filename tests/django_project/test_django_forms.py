"""Issue 14, point 8 under the Django middleware: no form value of any page, however
malformed, gets a 500; nor does a body that is not UTF-8 (the ASGI twin is
tests/security/test_forms.py; the values come from tests/support/malformed.py)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pyotp
import pytest
from django.conf import settings
from django.test import Client, override_settings

from mfa_middleware.stores.base import Store
from mfa_middleware.testing import Outbox
from tests.django_project.test_django_app import (
    FORM,
    challenge,
    enroll,
    form_value,
    login,
    next_step_code,
)
from tests.support.malformed import POSTED, XSS, forged_forms

NOT_UTF8 = b"csrf=\xff\xfe&code=\xff"
State = Callable[[Client], pyotp.TOTP | None]


def verified(client: Client) -> pyotp.TOTP | None:
    login(client, "alice")  # staff: the admin pages are hers to post to
    return enroll(client)


def unverified(client: Client) -> pyotp.TOTP | None:
    """Enrolled, then a new login: the code is asked."""
    totp = verified(client)
    client.post("/accounts/logout/")
    login(client, "alice")
    return totp


def unenrolled(client: Client) -> pyotp.TOTP | None:
    login(client, "alice")
    return None


def post_everywhere(c: Client) -> None:
    """Every NASTY value in every field of every POST page, then a body that is not UTF-8."""
    page = c.get("/_mfa/settings", HTTP_ACCEPT="text/html").content.decode()
    token = form_value(page, "csrf") if 'name="csrf"' in page else "x"
    for path in POSTED:
        for data in forged_forms(token):
            r = c.post(f"/_mfa{path}", urlencode(data), content_type=FORM, HTTP_ACCEPT="text/html")
            assert r.status_code < 500, (path, data["code"][:40], r.content[:200])
            assert XSS.encode() not in r.content, (path, data["code"][:40])
        r = c.generic("POST", f"/_mfa{path}", NOT_UTF8, content_type=FORM, HTTP_ACCEPT="text/html")
        assert r.status_code < 500, (path, r.content[:200])


@pytest.mark.checklist("UI-06")
@pytest.mark.parametrize("state", [verified, unverified, unenrolled], ids=lambda f: f.__name__)
def test_malformed_values_in_every_field_of_every_form(
    mfa_store: Store, outbox: Outbox, state: State
) -> None:
    c = Client()
    totp = state(c)
    # the "Trust this device?" pages on too, so that their forms take the values as well
    with override_settings(MFA_MIDDLEWARE={**settings.MFA_MIDDLEWARE, "trust_duration": "30d"}):
        post_everywhere(c)

    # nothing was lost: alice signs in again and gets through the step she is asked for
    # (with the token, /disable may have turned 2FA off: it needs no more than a recent code)
    fresh = Client()
    login(fresh, "alice")
    gate = fresh.get("/account/")["Location"]
    if gate.startswith("/_mfa/challenge"):
        assert totp is not None
        assert challenge(fresh, next_step_code(totp), "/account/") == 303
    else:
        assert gate.startswith("/_mfa/enroll"), gate
        enroll(fresh)
    assert fresh.get("/account/").status_code == 200

"""Operators and support staff in the Django demo (issue 21): the 2FA admin pages find users by
their Django username (the store keeps them under the primary key); a reset asks first and
emails the user; turning 2FA off keeps the admin page open."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from mfa_middleware.stores.base import Store
from mfa_middleware.testing import Outbox
from tests.django_project.test_django_app import enroll, form_value, login, post_form


def visible(response: object) -> str:
    text = response.content.decode()  # type: ignore[attr-defined]
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def test_the_admin_page_finds_bob_by_his_username(mfa_store: Store) -> None:
    bob_pk = str(get_user_model().objects.get(username="bob").pk)
    bob, alice = Client(), Client()
    login(bob, "bob")
    enroll(bob)
    login(alice, "alice")
    enroll(alice)
    page = alice.get("/_mfa/admin?user=bob")
    assert page.status_code == 200
    text = " ".join(visible(page).split())
    assert f"bob user id {bob_pk}" in text
    assert "Two-step verification On: 1 way to sign in" in text  # his record, not an empty one
    assert alice.get(f"/_mfa/admin?user={bob_pk}").content == page.content


def post_page(client: Client, path: str, form_page: str, **data: str) -> Any:
    return post_form(client, path, {"csrf": form_value(form_page, "csrf"), **data})


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    """The demo's settings with every email kept in memory."""
    box = Outbox()
    options = {**settings.MFA_MIDDLEWARE, "email_sender": box}
    with override_settings(MFA_MIDDLEWARE=options):
        yield box


def test_alice_resets_bob_after_confirming_and_bob_is_emailed(
    mfa_store: Store, outbox: Outbox
) -> None:
    bob_pk = str(get_user_model().objects.get(username="bob").pk)
    bob, alice = Client(), Client()
    login(bob, "bob")
    enroll(bob)
    login(alice, "alice")
    enroll(alice)
    page = alice.get("/_mfa/admin?user=bob").content.decode()
    asked = post_page(alice, "/_mfa/admin", page, action="reset", user=bob_pk)
    assert asked.status_code == 200
    assert "Reset two-step verification for bob?" in visible(asked)
    assert bob.get("/account/").status_code == 200  # nothing done yet
    done = post_page(
        alice, "/_mfa/admin", asked.content.decode(), action="reset", user=bob_pk, confirm="yes"
    )
    assert "An enrollment code was emailed to b***@example.com" in " ".join(visible(done).split())
    (mail,) = outbox.to("bob@example.com")[-1:]
    assert "Reset by: alice." in mail.text
    assert bob.get("/account/")["Location"].startswith("/accounts/login/")  # signed out


def test_mode_off_on_the_django_admin_page_keeps_alice_on_it(mfa_store: Store) -> None:
    alice = Client()
    login(alice, "alice")
    enroll(alice)
    page = alice.get("/_mfa/admin").content.decode()
    r = post_page(alice, "/_mfa/admin", page, action="mode", mode="off")
    assert r["Location"] == "/_mfa/admin?done=mode"
    again = alice.get("/_mfa/admin?done=mode")
    assert again.status_code == 200
    assert '<option value="off" selected>' in again.content.decode()

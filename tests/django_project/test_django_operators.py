"""Operators and support staff in the Django demo (issue 21): the 2FA admin pages find users by
their Django username (the store keeps them under the primary key), ..."""

from __future__ import annotations

import html
import re

from django.contrib.auth import get_user_model
from django.test import Client

from mfa_middleware.stores.base import Store
from tests.django_project.test_django_app import enroll, login


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

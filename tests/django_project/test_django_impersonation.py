"""django-hijack in the Django demo (issue 21 point 1): carol, a staff member, hijacks bob.
The session passes on carol's own second factor; bob's 2FA pages answer 403; every request
is an event naming both; releasing bob, carol confirms it's her with her own factor."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from mfa_middleware.core.effects import Key
from mfa_middleware.stores.base import Store
from tests.django_project.test_django_app import challenge, enroll, login, next_step_code
from tests.django_project.test_django_operators import visible


def pk(username: str) -> str:
    return str(get_user_model().objects.get(username=username).pk)


@pytest.fixture
def events(mfa_store: Store) -> Any:
    from mfa_middleware.django.signals import mfa_event

    heard: list[dict[str, Any]] = []

    def receiver(sender: str, user_id: str | None, event: dict[str, Any], **kw: Any) -> None:
        heard.append(event)

    mfa_event.connect(receiver)
    yield heard
    mfa_event.disconnect(receiver)


def test_carol_hijacks_bob_on_her_own_factor_and_his_2fa_stays_his(
    mfa_store: Store, events: list[dict[str, Any]]
) -> None:
    bob, carol = Client(), Client()
    login(bob, "bob")
    enroll(bob)
    bob_record = mfa_store.get(Key("user", pk("bob")))
    login(carol, "carol")
    totp = enroll(carol)
    r = carol.post("/hijack/acquire/", {"user_pk": pk("bob"), "next": "/account/"})
    assert r.status_code == 302, r.content[:300]
    account = carol.get("/account/")
    assert account.status_code == 200  # bob's page, without bob's code
    assert "bob" in visible(account)
    for path in ("/_mfa/settings", "/_mfa/enroll/totp", "/_mfa/devices", "/_mfa/admin"):
        refused = carol.get(path)
        assert refused.status_code == 403, path
        assert "You are signed in as another user, on their behalf." in visible(refused)
    assert mfa_store.get(Key("user", pk("bob"))) == bob_record
    named = [e for e in events if e["event"] in ("impersonated_request", "impersonation_refused")]
    assert {(e["target"], e["actor"]) for e in named} == {(pk("bob"), f"agent:{pk('carol')}")}
    assert any(e["path"] == "/account/" for e in named if e["event"] == "impersonated_request")
    # releasing bob logs carol in anew: she confirms it's her with her own factor
    released = carol.post("/hijack/release/", {"next": "/account/"})
    assert released.status_code == 302
    again = carol.get("/account/")
    assert again.status_code == 303
    assert again["Location"].startswith("/_mfa/challenge")
    assert challenge(carol, next_step_code(totp), "/account/") == 303
    assert carol.get("/account/").status_code == 200


def test_a_hijack_without_the_staff_members_own_factor_ends(
    mfa_store: Store, events: list[dict[str, Any]]
) -> None:
    carol = Client()
    login(carol, "carol")
    enroll(carol)
    carol.post("/hijack/acquire/", {"user_pk": pk("bob"), "next": "/account/"})
    carol.cookies.pop("mfa_session")  # nothing vouches for carol any more
    r = carol.get("/account/")
    assert r.status_code == 303  # the middleware's own redirect to the login page
    assert r["Location"].startswith("/accounts/login/")
    assert carol.get("/account/")["Location"].startswith("/accounts/login/")  # logged out
    refused = [e for e in events if e["event"] == "impersonation_refused"]
    assert [e["reason"] for e in refused] == ["mfa_required"]


def test_logging_out_while_acting_as_bob_ends_carols_own_mfa_session(
    mfa_store: Store, events: list[dict[str, Any]]
) -> None:
    carol = Client()
    login(carol, "carol")
    enroll(carol)
    carol.post("/hijack/acquire/", {"user_pk": pk("bob"), "next": "/account/"})
    copied = carol.cookies["mfa_session"].value
    carol.post("/accounts/logout/")
    ended = [e for e in events if e["event"] == "signed_out"]
    assert [e["target"] for e in ended] == [pk("carol")]  # her session, server-side
    thief = Client()
    login(thief, "carol")
    thief.cookies["mfa_session"] = copied
    assert thief.get("/account/")["Location"].startswith("/_mfa/challenge")

"""The Django admin's user list with two-step verification (issue 19 point 3): a column each
for the status, method, authenticators, trusted devices, exemption and last verification, read
for the whole page in one core call; filters by them and search by email; actions that ask
"Are you sure?" first, change nothing until confirmed, and log a `LogEntry` per user beside
the core's event; exempting only for a superadmin."""

from __future__ import annotations

import html
import re
import time
from dataclasses import replace
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from mfa_middleware.admin import Admin
from mfa_middleware.core import ops
from mfa_middleware.core.devices import DeviceRecord, device_key
from mfa_middleware.core.effects import Key
from mfa_middleware.core.records import throttle_key
from mfa_middleware.core.throttle import ThrottleState
from mfa_middleware.django.admin import ASKED
from mfa_middleware.django.settings import runtime
from mfa_middleware.stores.base import Store
from mfa_middleware.testing import FixedClock, Outbox
from tests.django_project.test_django_app import enroll, login
from tests.django_project.test_django_operators import (
    changelist,
    run_action,
    user_pk,
    visible,
)

ALL = {"alice", "bob", "carol", "svc-billing"}


def rows(page: str) -> dict[str, dict[str, str]]:
    """The result list's rows by username: each column's text by its field name."""
    table = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert table, "no result list"
    found = {}
    for row in re.findall(r"<tr.*?</tr>", table.group(1), re.S):
        cells = {
            name: " ".join(html.unescape(re.sub(r"<[^>]+>", "", value)).split())
            for name, value in re.findall(
                r'<t[hd] class="field-([a-z_]+)[^"]*"[^>]*>(.*?)</t[hd]>', row, re.S
            )
        }
        found[cells["username"]] = cells
    return found


def listed(client: Client, query: str = "") -> set[str]:
    page = client.get("/admin/auth/user/" + query)
    assert page.status_code == 200
    if 'id="result_list"' not in page.content.decode():  # Django shows no table then
        assert "0 users" in visible(page)
        return set()
    return set(rows(page.content.decode()))


def people(mfa_store: Store) -> dict[str, Client]:
    """bob and alice (a superuser) set up an authenticator app; carol signs in and does not."""
    clients = {name: Client() for name in ("bob", "carol", "alice")}
    login(clients["bob"], "bob")
    enroll(clients["bob"])
    login(clients["carol"], "carol")
    clients["carol"].get("/account/")  # sent to set 2FA up: she does not
    login(clients["alice"], "alice")
    enroll(clients["alice"])
    return clients


def operator() -> Admin:
    return Admin(runtime(), actor="cli:test")


def last_log_id() -> int:
    newest = LogEntry.objects.order_by("-pk").first()
    return newest.pk if newest is not None else 0


def test_each_column_says_one_thing_about_the_users_2fa(
    mfa_store: Store, clocked: FixedClock
) -> None:
    clients = people(mfa_store)
    bob = user_pk("bob")
    now = clocked()
    epoch = user_doc(mfa_store, "bob")["device_epoch"]  # enrolling bumped it
    device = DeviceRecord("Firefox", now, now, trusted_until=now + 3600, user_device_epoch=epoch)
    mfa_store.put(device_key(bob, "trusted"), device.to_doc())
    mfa_store.put(device_key(bob, "not-trusted"), replace(device, trusted_until=0).to_doc())
    operator().exempt(user_pk("svc-billing"))
    clocked.advance(5 * 60)
    page = changelist(clients["alice"])
    shown = rows(page)
    assert shown["bob"] == {
        "username": "bob",
        "two_factor": "On",
        "mfa_method": "Authenticator app",
        "mfa_authenticators": "1",
        "mfa_trusted_devices": "1",
        "mfa_exemption": "No",
        "mfa_last_verified": "5 minutes ago",
        "hijack_field": "Impersonate",  # django-hijack's button beside them, in the demo
    }
    assert 'title="authenticator app">1</span>' in page
    assert shown["carol"]["two_factor"] == "Not set up"
    assert shown["carol"]["mfa_method"] == "-"
    assert shown["carol"]["mfa_authenticators"] == "0"
    assert shown["carol"]["mfa_trusted_devices"] == "0"
    assert shown["carol"]["mfa_last_verified"] == "Never"
    assert shown["svc-billing"]["mfa_exemption"] == "API calls"
    mfa_store.put(throttle_key(bob), ThrottleState(locked_until=clocked() + 600).to_doc())
    assert rows(changelist(clients["alice"]))["bob"]["two_factor"] == "Locked out"


def test_a_page_of_users_is_read_in_one_core_call(
    mfa_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = people(mfa_store)
    calls: list[list[str]] = []
    real = ops.user_rows

    def counting(user_ids: list[str], now: float, limits: Any) -> Any:
        calls.append(list(user_ids))
        return real(user_ids, now, limits)

    monkeypatch.setattr(ops, "user_rows", counting)
    assert set(rows(changelist(clients["alice"]))) == ALL
    assert len(calls) == 1
    assert sorted(calls[0]) == sorted(user_pk(name) for name in ALL)


def test_the_list_filters_by_status_method_and_exemption_and_finds_an_email(
    mfa_store: Store,
) -> None:
    alice = people(mfa_store)["alice"]
    operator().exempt(user_pk("svc-billing"))
    locked = ThrottleState(locked_until=time.time() + 600)
    mfa_store.put(throttle_key(user_pk("carol")), locked.to_doc())
    assert listed(alice, "?mfa_method=totp") == {"alice", "bob"}
    assert listed(alice, "?mfa_method=sms") == set()
    assert listed(alice, "?mfa=on") == {"alice", "bob"}
    assert listed(alice, "?mfa=off") == {"carol", "svc-billing"}
    assert listed(alice, "?mfa=locked") == {"carol"}
    assert listed(alice, "?mfa_exempt=yes") == {"svc-billing"}
    assert listed(alice, "?mfa_exempt=no") == {"alice", "bob", "carol"}
    assert listed(alice, "?q=bob@example.com") == {"bob"}
    assert listed(alice, "?q=example.com&mfa=on") == {"alice", "bob"}
    page = alice.get("/admin/auth/user/").content.decode()
    for choice in ("Authenticator app", "Text message", "Email", "Passkey", "Not exempt"):
        assert f">{choice}</a>" in page


def user_doc(mfa_store: Store, username: str) -> dict[str, Any]:
    return dict(mfa_store.get(Key("user", user_pk(username))) or {})


# the action, what is true of bob once it is done (his record before it given), and the event
# the core emits for it
DONE = {
    "mfa_unlock": (lambda store, was: store.get(throttle_key(user_pk("bob"))) is None, "unlocked"),
    "mfa_force_logout": (
        lambda store, was: user_doc(store, "bob")["epoch"] == was["epoch"] + 1,
        "forced_logout",
    ),
    "mfa_exempt": (
        lambda store, was: user_doc(store, "bob").get("exempt") is True,
        "exemption_changed",
    ),
    "mfa_unexempt": (
        lambda store, was: user_doc(store, "bob").get("exempt") is False,
        "exemption_changed",
    ),
    "mfa_reset": (lambda store, was: not user_doc(store, "bob").get("authenticators"), "mfa_reset"),
}


@pytest.mark.parametrize("action", sorted(DONE))
def test_every_action_asks_first_then_logs_each_user_and_emits_the_event(
    mfa_store: Store, outbox: Outbox, clocked: FixedClock, action: str
) -> None:
    clients = people(mfa_store)
    alice = clients["alice"]
    for name in ("bob", "carol"):
        mfa_store.put(throttle_key(user_pk(name)), ThrottleState(failures=2).to_doc())
        if action == "mfa_unexempt":
            operator().exempt(user_pk(name))
    before = {name: user_doc(mfa_store, name) for name in ("bob", "carol")}
    mark = last_log_id()
    done, event_name = DONE[action]

    asked = run_action(alice, action, "bob", "carol")
    assert asked.status_code == 200
    page = asked.content.decode()
    text = " ".join(visible(asked).split())
    assert "Are you sure?" in text
    assert ASKED[action].question in html.unescape(page)
    assert text.rsplit("Users ", 1)[1].startswith("bob carol No, take me back")
    for name in ("bob", "carol"):
        assert f'name="_selected_action" value="{user_pk(name)}"' in page
    assert f'name="action" value="{action}"' in page
    assert 'name="mfa_confirm" value="yes"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<a href="/admin/auth/user/" class="button cancel-link">No, take me back</a>' in page
    # nothing changed yet
    assert {name: user_doc(mfa_store, name) for name in ("bob", "carol")} == before
    assert mfa_store.get(throttle_key(user_pk("bob"))) is not None
    assert clients["bob"].get("/account/").status_code == 200
    assert not done(mfa_store, before["bob"])
    assert last_log_id() == mark

    confirmed = run_action(alice, action, "bob", "carol", mfa_confirm="yes")
    assert confirmed.status_code in (200, 302)
    assert done(mfa_store, before["bob"])
    logged = LogEntry.objects.filter(pk__gt=mark)
    assert sorted(entry.object_repr for entry in logged) == ["bob", "carol"]
    for entry in logged:
        assert entry.user_id == int(user_pk("alice"))
        assert entry.get_change_message() == ASKED[action].logged
    events = operator().events(user_pk("bob"))
    mine = [e for e in events if e["actor"] == f"admin:{user_pk('alice')}"]
    assert event_name in [e["event"] for e in mine]
    assert all(e["target"] == user_pk("bob") for e in mine)
    history = alice.get(f"/admin/auth/user/{user_pk('bob')}/history/")
    assert ASKED[action].logged in visible(history)


def test_force_logout_signs_the_user_out(
    mfa_store: Store, outbox: Outbox, clocked: FixedClock
) -> None:
    clients = people(mfa_store)
    run_action(clients["alice"], "mfa_force_logout", "bob", mfa_confirm="yes")
    assert clients["bob"].get("/account/")["Location"].startswith("/accounts/login/")
    assert clients["carol"].get("/account/")["Location"].startswith("/_mfa/enroll")  # as before


def test_the_helpdesk_may_not_exempt_or_unexempt(
    mfa_store: Store, outbox: Outbox, clocked: FixedClock
) -> None:
    people(mfa_store)
    carol = Client()
    login(carol, "carol")
    enroll(carol)
    page = changelist(carol)
    for offered in ("mfa_reset", "mfa_unlock", "mfa_force_logout"):
        assert f'value="{offered}"' in page
    for refused in ("mfa_exempt", "mfa_unexempt"):
        assert f'value="{refused}"' not in page
    operator().exempt(user_pk("svc-billing"))
    mark = last_log_id()
    for confirm in ({}, {"mfa_confirm": "yes"}):
        asked = run_action(carol, "mfa_exempt", "bob", **confirm)
        assert "Are you sure?" not in visible(asked)
        run_action(carol, "mfa_unexempt", "svc-billing", **confirm)
    assert not user_doc(mfa_store, "bob").get("exempt")
    assert user_doc(mfa_store, "svc-billing").get("exempt") is True
    assert last_log_id() == mark

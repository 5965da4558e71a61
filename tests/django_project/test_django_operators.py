"""Operators and support staff in the Django demo (issue 21): the 2FA admin pages find users by
their Django username (the store keeps them under the primary key); a reset asks first and
emails the user; turning 2FA off keeps the admin page open."""

from __future__ import annotations

import html
import io
import json
import re
import time
from typing import Any

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from mfa_middleware.core.effects import Key
from mfa_middleware.stores.base import Store
from mfa_middleware.testing import FixedClock, Outbox
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


# --- the Django admin's user list: a 2FA column and actions, by tier (issue 21 points 2, 3) --


def user_pk(username: str) -> str:
    return str(get_user_model().objects.get(username=username).pk)


def changelist(client: Client) -> str:
    page = client.get("/admin/auth/user/")
    assert page.status_code == 200, page.content[:300]
    return str(page.content.decode())


def run_action(client: Client, action: str, *usernames: str, **extra: str) -> Any:
    data = {"action": action, "_selected_action": [user_pk(u) for u in usernames], **extra}
    return client.post("/admin/auth/user/", data, follow=False)


def test_carol_the_helpdesk_resets_bob_from_the_django_admin_user_list(
    mfa_store: Store, outbox: Outbox, clocked: FixedClock
) -> None:
    bob, carol = Client(), Client()
    login(bob, "bob")
    enroll(bob)
    login(carol, "carol")
    enroll(carol)
    listed = changelist(carol)
    assert '<th scope="col" class="column-two_factor">' in listed  # the columns
    row = re.search(r"<tr>(?:(?!</tr>).)*?>bob</a>.*?</tr>", listed, re.S)
    assert row
    assert '<td class="field-mfa_method">Authenticator app</td>' in row.group(0)
    for offered in ("mfa_reset", "mfa_unlock", "mfa_force_logout"):
        assert f'value="{offered}"' in listed
    assert 'value="mfa_exempt"' not in listed  # a superadmin's action
    run_action(carol, "mfa_exempt", "bob")  # posted by hand: Django refuses the action
    assert not (mfa_store.get(Key("user", user_pk("bob"))) or {}).get("exempt")
    asked = run_action(carol, "mfa_reset", "bob")
    assert asked.status_code == 200
    assert "Are you sure you want to reset two-step verification" in visible(asked)
    assert bob.get("/account/").status_code == 200  # nothing done yet
    done = run_action(carol, "mfa_reset", "bob", mfa_confirm="yes")
    assert done.status_code == 200
    assert "bob: enrollment code emailed to b***@example.com" in " ".join(visible(done).split())
    (mail,) = outbox.to("bob@example.com")[-1:]
    assert "Reset by: carol." in mail.text
    assert bob.get("/account/")["Location"].startswith("/accounts/login/")
    row = re.search(r"<tr>(?:(?!</tr>).)*?>bob</a>.*?</tr>", changelist(carol), re.S)
    assert row
    assert '<td class="field-two_factor">Not set up</td>' in row.group(0)


def test_django_admin_actions_need_a_recent_code_and_the_superuser_exempts(
    mfa_store: Store, outbox: Outbox, clocked: FixedClock
) -> None:
    alice = Client()
    login(alice, "alice")
    enroll(alice)
    assert 'value="mfa_exempt"' in changelist(alice)  # a superuser is a superadmin
    clocked.advance(16 * 60)  # verified, but not within reauth_window
    stale = run_action(alice, "mfa_exempt", "bob")
    assert stale.status_code == 302
    followed = alice.get(stale["Location"])
    assert "Confirm it's you first" in visible(followed)
    assert not (mfa_store.get(Key("user", user_pk("bob"))) or {}).get("exempt")
    clocked.set(time.time())  # back in the window: the action is done
    done = run_action(alice, "mfa_exempt", "bob", mfa_confirm="yes")
    assert done.status_code == 302
    assert (mfa_store.get(Key("user", user_pk("bob"))) or {}).get("exempt") is True


def test_the_login_list_names_django_users_and_filters_them(mfa_store: Store) -> None:
    bob, carol, alice = Client(), Client(), Client()
    login(bob, "bob")
    enroll(bob)
    login(carol, "carol")
    carol.get("/account/")  # signed in, sent to set 2FA up: she does not
    login(alice, "alice")
    enroll(alice)
    page = alice.get("/_mfa/admin/users")
    assert page.status_code == 200
    shown = " ".join(visible(page).split())
    assert "Users 1 to 3 of 3" in shown
    assert f"bob user id {user_pk('bob')}" in shown
    assert "carol" in shown
    enrolled = " ".join(visible(alice.get("/_mfa/admin/users?enrolled=yes")).split())
    assert "Users 1 to 2 of 2" in enrolled
    assert "carol" not in enrolled.replace("Signed in as alice", "")
    # the same filter in the Django admin's user list
    on = alice.get("/admin/auth/user/?mfa=on").content.decode()
    assert ">bob<" in on
    assert ">carol<" not in on
    off = alice.get("/admin/auth/user/?mfa=off").content.decode()
    assert ">carol<" in off
    assert ">svc-billing<" in off  # never seen: not set up
    assert ">bob<" not in off


def test_events_carry_their_stamp_in_signals_and_manage_py_mfa_events(
    mfa_store: Store, outbox: Outbox
) -> None:
    from django.core.management import call_command

    from mfa_middleware.django.signals import mfa_forced_logout

    heard: list[dict[str, Any]] = []

    def receiver(sender: str, user_id: str | None, event: dict[str, Any], **kw: Any) -> None:
        heard.append(event)

    mfa_forced_logout.connect(receiver)
    try:
        bob, alice = Client(), Client()
        login(bob, "bob")
        enroll(bob)
        login(alice, "alice")
        enroll(alice)
        page = alice.get("/_mfa/admin?user=bob").content.decode()
        post_page(alice, "/_mfa/admin", page, action="logout", user=user_pk("bob"))
    finally:
        mfa_forced_logout.disconnect(receiver)
    (event,) = heard
    assert event["actor"] == f"admin:{user_pk('alice')}"
    assert event["target"] == user_pk("bob")
    assert len(event["id"]) == 32
    out = io.StringIO()
    call_command("mfa", "--", "--json", "events", "bob", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["events"][0]["id"] == event["id"]
    assert "Signed out everywhere" in visible(alice.get("/_mfa/admin?user=bob"))


def test_sms_fallback_emails_the_django_address_when_a_text_cannot_be_sent(
    mfa_store: Store,
) -> None:
    sms, mail = Outbox("sms"), Outbox("email")
    options = {
        **settings.MFA_MIDDLEWARE,
        "sms_sender": sms,
        "email_sender": mail,
        "email_codes": False,
        "sms_fallback": "email",
    }
    with override_settings(MFA_MIDDLEWARE=options):
        bob = Client()
        login(bob, "bob")
        page = bob.get("/_mfa/enroll/sms").content.decode()
        sent = post_page(bob, "/_mfa/enroll/sms", page, phone="+14155552671", region="US")
        assert sent.status_code == 303
        code_page = bob.get(sent["Location"]).content.decode()
        done = post_page(bob, "/_mfa/enroll/code", code_page, code=sms.last_code())
        assert done.status_code == 303
        bob.post("/accounts/logout/")
        login(bob, "bob")
        sms.fail = True  # the provider is down
        challenge_page = bob.get("/_mfa/challenge")
        assert "so we emailed your code to b***@example.com instead" in " ".join(
            visible(challenge_page).split()
        )
        assert len([m for m in mail.to("bob@example.com") if "code" in m.subject.lower()]) == 1
        verified = post_page(
            bob, "/_mfa/challenge", challenge_page.content.decode(), code=mail.last_code()
        )
        assert verified.status_code == 303
        assert bob.get("/account/").status_code == 200


def test_relogin_after_enrollment_in_the_django_demo(mfa_store: Store) -> None:
    options = {**settings.MFA_MIDDLEWARE, "relogin_after_enrollment": True}
    with override_settings(MFA_MIDDLEWARE=options):
        bob = Client()
        login(bob, "bob")
        page = bob.get("/_mfa/enroll/totp?next=/account/").content.decode()
        secret = re.search(r"<code>([A-Z2-7 ]+)</code>", page)
        assert secret
        code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
        done = post_page(bob, "/_mfa/enroll/totp", page, code=code, next="/account/")
        assert done.status_code == 303
        assert done["Location"] == "/accounts/login/?mfa=enrolled&next=%2Faccount%2F"
        shown = bob.get(done["Location"])
        text = " ".join(visible(shown).split())
        assert "Two-step verification is set up. Log in again with your password" in text
        assert "Your session has ended" not in text
        assert bob.get("/account/")["Location"].startswith("/accounts/login/")


def test_carol_sets_bobs_phone_in_the_django_demo_and_bob_confirms_it(mfa_store: Store) -> None:
    sms = Outbox("sms")
    options = {**settings.MFA_MIDDLEWARE, "sms_sender": sms}
    with override_settings(MFA_MIDDLEWARE=options):
        bob, carol = Client(), Client()
        login(bob, "bob")
        bob.get("/account/")  # sent to set 2FA up: he does not, yet
        login(carol, "carol")
        enroll(carol)
        page = carol.get("/_mfa/admin?user=bob").content.decode()
        r = post_page(
            carol,
            "/_mfa/admin",
            page,
            action="set_phone",
            user=user_pk("bob"),
            phone="(415) 555-2671",
            region="US",
        )
        assert r.status_code == 303
        assert sms.messages == []
        bob = Client()  # his next sign-in
        login(bob, "bob")
        r = bob.get("/_mfa/enroll")
        assert r["Location"].startswith("/_mfa/enroll/assigned")
        r = bob.get(r["Location"])
        code_page = bob.get(r["Location"])
        assert "carol, an administrator, set this phone number" in visible(code_page)
        assert sms.messages[-1].to == "+14155552671"
        done = post_page(bob, "/_mfa/enroll/code", code_page.content.decode(), code=sms.last_code())
        assert done.status_code == 303
        assert bob.get("/account/").status_code == 200


def test_the_django_demo_serves_its_metrics_to_this_machine(mfa_store: Store) -> None:
    from demo_site.metrics import METRICS

    def enrolled() -> float:
        labels = {"method": "totp", "step": "enroll", "outcome": "success"}
        return METRICS.registry.get_sample_value("mfa_verifications_total", labels) or 0.0

    before = enrolled()
    bob = Client()
    login(bob, "bob")
    enroll(bob)
    assert enrolled() == before + 1
    text = Client().get("/metrics").content.decode()  # no login: a scraper on this machine
    assert 'mfa_verifications_total{method="totp",outcome="success",step="enroll"}' in text
    assert "bob" not in text
    far = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert far.status_code == 404

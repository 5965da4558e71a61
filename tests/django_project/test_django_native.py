"""The Django demo on `DjangoStore`, the default with the app installed: what a verified
request costs in queries (one indexed query; none with the process cache), the async path,
the signals sent for events, and pages overridden from the project's template folders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext

from mfa_middleware.core.effects import Key
from mfa_middleware.django import signals
from mfa_middleware.django.settings import runtime
from mfa_middleware.django.store import DjangoStore
from tests.django_project.test_django_app import FORM, challenge, enroll, form_value, login
from tests.django_project.test_django_store import LOCMEM, fresh

OURS = "mfa_middleware.django.MFAMiddleware"
TABLE = "mfa_middleware_document"


def without_store(**extra: Any) -> dict[str, Any]:
    options = {k: v for k, v in settings.MFA_MIDDLEWARE.items() if k != "store"}
    return {**options, "trust_duration": 0, "recovery_code_count": 0, **extra}


@pytest.fixture
def default_store() -> Iterator[DjangoStore]:
    """The demo as configured, minus nothing but its test-unfriendly extras: no store named,
    so the app's default, DjangoStore on Django's (test) database."""
    fresh("default")
    with override_settings(MFA_MIDDLEWARE=without_store()):
        store = runtime().store
        assert isinstance(store, DjangoStore)
        yield store


@pytest.fixture
def cached_store() -> Iterator[DjangoStore]:
    """DjangoStore with the process cache, its log in a cache (one process here: LocMem)."""
    fresh("default")
    with override_settings(CACHES={"default": LOCMEM, "mfa": LOCMEM}):
        store = DjangoStore(cache="mfa")
        with override_settings(MFA_MIDDLEWARE=without_store(store=store)):
            yield store
        store.close()


def added_queries(client: Client) -> list[str]:
    """The queries a verified request makes with the middleware that it does not without
    (a client loads its middleware once: the request without it is made by a fresh one)."""
    with CaptureQueriesContext(connection) as with_mfa:
        assert client.get("/account/").status_code == 200
    middleware = [m for m in settings.MIDDLEWARE if m != OURS]
    with override_settings(MIDDLEWARE=middleware), CaptureQueriesContext(connection) as without:
        bare = Client()
        bare.cookies = client.cookies
        assert bare.get("/account/").status_code == 200
    ours = [q["sql"] for q in with_mfa.captured_queries]
    theirs = [q["sql"] for q in without.captured_queries]
    assert not any(TABLE in sql for sql in theirs)
    added = [sql for sql in ours if TABLE in sql]
    assert len(ours) == len(theirs) + len(added)  # nothing else differs
    return added


def test_the_default_store_is_djangostore_and_state_lands_in_the_database(
    default_store: DjangoStore,
) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    bob = get_user_model().objects.get(username="bob")
    record = default_store.get(Key("user", str(bob.pk)))
    assert record is not None
    assert [a["kind"] for a in record["authenticators"]] == ["totp"]


def test_a_verified_request_adds_one_indexed_query(default_store: DjangoStore) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    client.get("/account/")
    [query] = added_queries(client)
    assert TABLE in query
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {query}")
        plan = [row[-1] for row in cursor.fetchall()]
    searches = [step for step in plan if step.startswith("SEARCH")]
    assert len(searches) == 3, plan  # settings, the user's record, the session's end
    unique_key = "USING INDEX sqlite_autoindex_mfa_middleware_document_1 (kind=? AND part=? AND"
    assert all(unique_key in step for step in searches), plan
    assert not any(step.startswith("SCAN") for step in plan), plan  # no table scan


def test_a_verified_request_adds_no_query_with_the_process_cache(
    cached_store: DjangoStore,
) -> None:
    client = Client()
    login(client, "bob")
    enroll(client)
    client.get("/account/")  # fills the process cache
    assert added_queries(client) == []


def test_force_logout_through_the_process_cache(cached_store: DjangoStore) -> None:
    from django.core.management import call_command

    alice = Client()
    login(alice, "alice")
    enroll(alice)
    assert alice.get("/account/").status_code == 200
    call_command("mfa", "logout", "alice")  # this process: seen at once, no poll needed
    assert alice.get("/account/")["Location"].startswith(settings.LOGIN_URL)


@pytest.mark.anyio
async def test_the_async_path_on_djangostore(default_store: DjangoStore) -> None:
    client = AsyncClient()
    await client.aforce_login(await get_user_model().objects.aget(username="bob"))
    page = await client.get("/_mfa/enroll/totp")
    html = page.content.decode()
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", html).group(1).replace(" ", "")  # type: ignore[union-attr]
    done = await client.post(
        "/_mfa/enroll/totp",
        urlencode({"csrf": form_value(html, "csrf"), "code": pyotp.TOTP(secret).now()}),
        content_type=FORM,
    )
    assert done.status_code == 303
    answer = await client.get("/api/async-whoami/", headers={"accept": "application/json"})
    assert answer.status_code == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_events_are_sent_as_signals_beside_on_event(default_store: DjangoStore) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    hooked: list[str] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        heard.append((sender, kwargs))

    signals.mfa_event.connect(receiver)
    locked: list[str | None] = []
    signals.mfa_locked_out.connect(lambda sender, user_id, **kw: locked.append(user_id))
    verified: list[str] = []
    signals.mfa_event.connect(lambda sender, **kw: verified.append(sender), sender="enrolled")
    options = without_store(on_event=lambda event: hooked.append(event["event"]))
    try:
        with override_settings(MFA_MIDDLEWARE=options):
            client = Client()
            login(client, "bob")
            totp = enroll(client)
            client.post("/accounts/logout/")
            login(client, "bob")
            wrong = "000000" if totp.now() != "000000" else "111111"
            for _ in range(5):
                challenge(client, wrong)
    finally:
        signals.mfa_event.disconnect(receiver)
    bob = str(get_user_model().objects.get(username="bob").pk)
    names = [name for name, _ in heard]
    assert names == hooked  # every event, in order, as the project's own hook saw them
    assert {"enrolled", "verify_failed", "locked_out"} <= set(names)
    _, kwargs = heard[names.index("enrolled")]
    assert kwargs["user_id"] == bob
    assert kwargs["event"]["event"] == "enrolled"
    assert kwargs["event"]["method"] == "totp"
    assert locked == [bob]
    assert verified == ["enrolled"]  # a receiver for one sender hears only that event


def test_every_event_the_code_emits_has_a_named_signal() -> None:
    source = Path(__file__).resolve().parents[2] / "src" / "mfa_middleware"
    emitted = set()
    for path in source.rglob("*.py"):
        emitted |= set(re.findall(r'emit\(\s*"([a-z_]+)"', path.read_text()))
    assert len(emitted) > 20
    assert emitted <= set(signals.SIGNALS), emitted - set(signals.SIGNALS)
    assert signals.SIGNALS["verify_succeeded"] is signals.mfa_verified
    assert signals.SIGNALS["mfa_reset"] is signals.mfa_reset


def test_a_page_is_overridden_from_the_projects_templates(
    default_store: DjangoStore, tmp_path: Path
) -> None:
    folder = tmp_path / "mfa_middleware"
    folder.mkdir()
    (folder / "enroll_choose.html").write_text(
        '{% extends "base.html" %}{% block content %}<p>Our own words.</p>{% endblock %}'
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates):
        client = Client()
        login(client, "bob")
        page = client.get("/_mfa/enroll").content.decode()
        assert "Our own words." in page
        assert "<html" in page  # the built-in base.html around it
        assert "Set up two-step verification" not in page
    restored = Client()
    login(restored, "bob")
    assert "Set up two-step verification" in restored.get("/_mfa/enroll").content.decode()

"""A WSGI app chooses the pages' language by putting it in the environ under
`mfa_middleware.language` (before our middleware sees the request); the browser's otherwise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mfa_middleware import MemoryStore
from mfa_middleware.core.http import LANGUAGE_KEY
from mfa_middleware.testing import FixedClock
from tests.wsgi.flask_app import create_app

LANG = re.compile(r'<html lang="([^"]+)" dir="([^"]+)">')


def test_the_environ_key_then_the_browser() -> None:
    app = create_app(store=MemoryStore(), clock=FixedClock(1_800_000_000), cookie_secure=False)
    ours = app.wsgi_app

    def choosing(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("QUERY_STRING") == "lang=ar":  # the app's own language switch
            environ[LANGUAGE_KEY] = "ar"
        return ours(environ, start_response)

    app.wsgi_app = choosing  # type: ignore[method-assign]
    client = app.test_client()
    login = client.post("/login", data={"username": "alice", "password": "alice-password"})
    assert login.status_code == 303
    german = {"accept": "text/html", "accept-language": "de"}
    chosen = client.get("/_mfa/enroll?lang=ar", headers=german).get_data(as_text=True)
    browsers = client.get("/_mfa/enroll", headers=german).get_data(as_text=True)
    assert LANG.search(chosen).groups() == ("ar", "rtl")  # type: ignore[union-attr]
    assert "<h1>إعداد التحقق بخطوتين</h1>" in chosen
    assert LANG.search(browsers).groups() == ("de", "ltr")  # type: ignore[union-attr]

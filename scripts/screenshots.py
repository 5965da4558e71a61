"""Screenshots of every page state, at desktop (1280 px) and phone (390 px) width.

    python scripts/screenshots.py [extra pytest arguments]      (or: make screenshots)

Runs the browser tests (tests/browser) against the Starlette demo with MFA_SCREENSHOTS=1: each
page state the journeys pass (Tab.snap) is saved as docs/screenshots/<state>-desktop.png and
<state>-phone.png: the demo's login and account pages; enrollment (method, authenticator app
with and without the key, a wrong code, SMS and email forms, the code page and its errors, the
cooldown answer); recovery codes; "Trust this device?"; the challenge (app and email codes,
wrong code, lockout); recovery codes in use; the lost-device pages; settings, devices, turning
2FA off; the devices offered after a sign-in; passkeys and several ways to sign in, removing
one and the refusal to remove the only one (tests/browser/test_passkeys.py); the admin pages
(a helpdesk administrator's view, the list of users) and an administrator's reset with its
confirmation; the enrollment code page; not found; approving a sign-in from another browser
(the login screen's number and the approver's choices, tests/browser/test_push_approval.py); a
few states in Arabic, Japanese and French at phone width (lang-<language>-<state>-phone.png,
tests/browser/test_languages.py); the Django demo's admin user list with its 2FA columns
(django-admin-users-desktop.png, tests/browser/test_django_admin.py); and the single-page app
example signing in through the JSON API (spa-*.png, tests/browser/test_spa.py).
The same states are checked by axe-core in tests/browser/test_accessibility.py. Needs Debian's
chromium and the playwright package, like the tests. Old PNGs are removed first, so a state
that is gone leaves no stale picture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def python() -> str:
    """The project's venv when there is one (`make` creates it), else this interpreter."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main(argv: list[str]) -> int:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    env = {**os.environ, "MFA_SCREENSHOTS": "1"}
    command = [
        python(), "-m", "pytest", "tests/browser", "-q", "-p", "no:cacheprovider",
        "-k", "starlette or languages or django_admin or spa", *argv,
    ]  # fmt: skip
    code = subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 (a fixed command)
    written = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    print(f"{len(written)} screenshots in {SCREENSHOTS.relative_to(ROOT)}: {', '.join(written)}")
    if code == 0 and not written:
        print("no screenshot was written: were the browser tests skipped?", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

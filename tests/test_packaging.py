"""What installing and importing the package brings: the core dependencies are what `src/`
imports, the extras the error messages name exist, the LICENSE is there, and `import
mfa_middleware` leaves the heavy libraries for the first moment they are needed."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mfa_middleware.config import MFAConfig
from mfa_middleware.errors import ConfigError
from mfa_middleware.senders import ConsoleSender

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mfa_middleware"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
KEY = "k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe"

# Loaded only when first used: a page rendered, a QR code drawn, a code made or checked, a
# secret encrypted, a cookie signed, a language negotiated, a phone number parsed. Starlette
# and python-multipart are not dependencies at all.
LATER = ("segno", "jinja2", "markupsafe", "pyotp", "cryptography", "itsdangerous", "babel")
NEVER = ("phonenumbers", "starlette", "multipart", "python_multipart")

IMPORT_THEN_USE = """
import json, sys
import mfa_middleware

def loaded():
    return sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))

after_import = loaded()
from mfa_middleware.core import otp
from mfa_middleware.core.keys import Keyring
from mfa_middleware.core.tokens import session_codec
from mfa_middleware.i18n import Languages
from mfa_middleware.render import Renderer
from mfa_middleware.web.qr import qr_svg

keyring = Keyring(["k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe"])
secret = otp.new_secret()
assert keyring.decrypt(keyring.encrypt(secret)) == secret
assert session_codec(keyring).decode("not a token") is None
assert "<svg" in qr_svg(otp.provisioning_uri(secret, "alice", otp.TotpParams()), "QR code")
assert "nowrap" in Renderer(None, {}).env.filters
assert Languages().match("en-GB,en;q=0.8") == "en"
print(json.dumps({"file": mfa_middleware.__file__, "after_import": after_import,
                  "after_use": loaded()}))
"""


def name(requirement: str) -> str:
    """The distribution a requirement names, normalised ("Jinja2>=3" -> "jinja2")."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_import_leaves_the_heavy_libraries_until_they_are_used() -> None:
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_USE, *LATER, *NEVER],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(run.stdout)
    assert seen["file"] == str(SRC / "__init__.py")  # this checkout, not another copy
    assert seen["after_import"] == []
    assert seen["after_use"] == sorted(LATER)  # the names are right: using them loads them


# Our own request machinery (the flows, the gate, the runtime, the effects they yield) loads
# when the middleware is built, not with `import mfa_middleware` (issue 16: about half the
# import time of 185c1a6; see the README's Development section for the command that times it).
MACHINERY = (
    "mfa_middleware.core.effects",
    "mfa_middleware.core.flows",
    "mfa_middleware.core.oob",
    "mfa_middleware.core.records",
    "mfa_middleware.core.webauthn",
    "mfa_middleware.runtime",
    "mfa_middleware.web.entry",
    "mfa_middleware.web.gate",
)

IMPORT_THEN_BUILD = """
import json, sys
from mfa_middleware import MFAConfig, MFAMiddleware, MemoryStore

def loaded():
    return sorted(m for m in sys.modules if m in sys.argv[1:])

after_import = loaded()
config = MFAConfig(secret_keys=[sys.argv[1]], store=MemoryStore())
MFAMiddleware(lambda scope, receive, send: None, config=config)
print(json.dumps({"after_import": after_import, "after_build": loaded()}))
"""


def test_import_leaves_the_request_machinery_until_the_middleware_is_built() -> None:
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_BUILD, KEY, *MACHINERY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(run.stdout)
    assert seen["after_import"] == []
    assert seen["after_build"] == sorted(MACHINERY)  # the names are right: building loads them


def imported_distributions() -> set[str]:
    """The distributions whose modules `src/` imports, anywhere in a module."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    providers = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                if root not in stdlib and root != "mfa_middleware":
                    found.update(name(d) for d in providers.get(root, [root]))
    return found


def test_every_core_dependency_is_imported_by_the_package() -> None:
    core = {name(r) for r in PROJECT["dependencies"]}
    assert core == {"itsdangerous", "pyotp", "jinja2", "segno", "cryptography", "babel"}
    assert core <= imported_distributions()
    imported = imported_distributions()
    assert "starlette" not in imported
    assert "python-multipart" not in imported
    # the demo, the README's Quickstart and the tests need both: the dev extra brings them
    assert {"starlette", "python-multipart"} <= {
        name(r) for r in PROJECT["optional-dependencies"]["dev"]
    }


def test_the_extra_the_sms_error_names_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "phonenumbers", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'mfa_middleware[sms]'")):
        MFAConfig(secret_keys=[KEY], sms_sender=ConsoleSender("sms"))
    extras = PROJECT["optional-dependencies"]
    assert [name(r) for r in extras["sms"]] == ["phonenumbers"]
    assert "mfa_middleware[sms]" in extras["twilio"]  # any SMS sender needs it, Twilio's too


def test_the_license_file_matches_the_declared_license() -> None:
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 mfa_middleware contributors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_the_wheel_ships_the_compiled_catalogs(tmp_path: Path) -> None:
    """The package's languages are in the wheel as compiled .mo files, one per catalog."""
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mfa_middleware-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(SRC.parent).as_posix() for p in SRC.glob("locale/*/LC_MESSAGES/*.po")}
    assert len(shipped) == 11
    assert {name.removesuffix(".po") + ".mo" for name in shipped} <= names
    assert "mfa_middleware/locale/mfa_middleware.pot" in names  # to start an app's own catalog

"""What installing the package brings: the core dependencies are what `src/` imports, the
extras the error messages name exist, and the LICENSE is there."""

from __future__ import annotations

import ast
import importlib.metadata
import re
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


def name(requirement: str) -> str:
    """The distribution a requirement names, normalised ("Jinja2>=3" -> "jinja2")."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


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
    assert core == {"itsdangerous", "pyotp", "jinja2", "segno", "cryptography"}
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

"""WebAuthn in `MFAConfig`: off by default, its relying party checked at startup, and py_webauthn
never imported by `import mfa_middleware` or by building a configuration."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware.config import MFAConfig
from mfa_middleware.core.relying_party import WebAuthnSettings
from mfa_middleware.errors import ConfigError

KEY = "k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe"
SRC = Path(__file__).resolve().parents[1] / "src"


def config(**kw: Any) -> MFAConfig:
    kw.setdefault("secret_keys", [KEY])
    return MFAConfig(**kw)


def test_off_unless_enabled() -> None:
    assert config().webauthn is None
    # options for it are not even read while it is off
    assert config(webauthn_rp_id="10.0.0.1", public_url="http://10.0.0.1").webauthn is None


def test_the_relying_party_comes_from_public_url() -> None:
    cfg = config(webauthn_enabled=True, public_url="https://app.example.com", app_name="Shop")
    assert cfg.webauthn == WebAuthnSettings("app.example.com", "Shop", ("https://app.example.com",))
    assert cfg.webauthn.user_verification == "preferred"
    assert cfg.webauthn.attestation == "none"
    assert cfg.webauthn.resident_key == "preferred"


def test_explicit_options_win() -> None:
    cfg = config(
        webauthn_enabled=True,
        public_url="https://app.example.com",
        webauthn_rp_id="example.com",
        webauthn_origins=["https://example.com", "https://app.example.com"],
        webauthn_user_verification="required",
        webauthn_attestation="direct",
        webauthn_resident_key="discouraged",
    )
    assert cfg.webauthn == WebAuthnSettings(
        "example.com",
        "mfa_middleware",
        ("https://example.com", "https://app.example.com"),
        "required",
        "direct",
        "discouraged",
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "webauthn_rp_id"),  # no public_url, no rp id
        ({"public_url": "http://127.0.0.1:8000"}, "public_url"),
        ({"public_url": "http://app.example.com"}, "public_url"),
        (
            {"webauthn_rp_id": "example.com", "webauthn_origins": ["https://evil.com"]},
            "webauthn_origins",
        ),
        (
            {"webauthn_rp_id": "example.com", "webauthn_user_verification": "yes"},
            "webauthn_user_verification",
        ),
        (
            {"webauthn_rp_id": "example.com", "webauthn_attestation": "enterprise"},
            "webauthn_attestation",
        ),
        (
            {"webauthn_rp_id": "example.com", "webauthn_resident_key": "always"},
            "webauthn_resident_key",
        ),
    ],
)
def test_a_relying_party_that_cannot_work_is_refused_at_startup(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        config(webauthn_enabled=True, **options)
    assert exc.value.field == field
    assert f"MFAConfig.{field}" in str(exc.value)


def test_enabled_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as exc:
        config(webauthn_enabled="yes", public_url="https://app.example.com")
    assert exc.value.field == "webauthn_enabled"


def test_enabled_without_py_webauthn_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "webauthn" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError) as exc:
        config(webauthn_enabled=True, public_url="https://app.example.com")
    assert exc.value.field == "webauthn_enabled"
    assert exc.value.allowed == "pip install 'mfa_middleware[webauthn]'"


def test_py_webauthn_is_imported_only_by_the_ceremonies() -> None:
    code = (
        "import sys, mfa_middleware\n"
        "from mfa_middleware import MFAConfig, MemoryStore\n"
        "import mfa_middleware.core.webauthn\n"
        "MFAConfig(secret_keys=['k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe'], store=MemoryStore(),\n"
        "          webauthn_enabled=True, public_url='https://app.example.com')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('webauthn', 'cbor2')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout

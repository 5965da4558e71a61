"""Every secret the middleware makes comes from the OS CSPRNG: TOTP seeds, codes sent by SMS
and email, recovery codes, session and device ids, lost-device links. Each generator is shown
to draw from it (a stand-in for it decides the output), and nothing in the package uses the
`random` module for a secret."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyotp
import pytest

from mfa_middleware.core import oob, otp, recovery, tokens
from mfa_middleware.core.keys import Keyring
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.stores.memory import MemoryStore

SRC = Path(__file__).resolve().parents[2] / "src" / "mfa_middleware"


class FirstChoice:
    """A stand-in for pyotp's SystemRandom that always picks the first character."""

    def choice(self, seq: Any) -> Any:
        return seq[0]


@pytest.mark.checklist("TOTP-06", "OOB-03", "RC-01", "SES-04")
def test_every_secret_is_drawn_from_the_os_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(pyotp.random, random.SystemRandom)  # what pyotp.random_base32 uses
    monkeypatch.setattr(pyotp, "random", FirstChoice())
    assert otp.new_secret() == "A" * 32  # 32 base32 characters: 160 bits
    monkeypatch.setattr(oob.secrets, "randbelow", lambda n: 42 if n == 10**6 else -1)
    assert oob.new_code(6) == "000042"  # and leading zeros are kept
    monkeypatch.setattr(recovery.secrets, "choice", lambda seq: seq[1])
    assert recovery.new_code() == "1111-1111-1111-1111"
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda n: f"{n} random bytes")
    assert tokens.new_id() == "18 random bytes"  # 144 bits: session and device ids
    flow = recovery.issue_reset_link(
        "alice", 0.0, 60, Keyring(["k" * 8 + "0123456789abcdefghijklmnop"])
    )
    assert run_sync(flow, MemoryStore(), EventSink()) == "24 random bytes"


@pytest.mark.checklist("TOTP-06", "OOB-03", "RC-01", "SES-04")
def test_nothing_uses_the_random_module_for_a_secret() -> None:
    users = {
        path.relative_to(SRC).as_posix(): path.read_text()
        for path in SRC.rglob("*.py")
        if re.search(r"^\s*(import random|from random import)", path.read_text(), re.M)
    }
    assert set(users) == {"stores/redis.py"}  # the jitter of its retry back-off, nothing else
    calls = re.findall(r"random\.\w+\(", users["stores/redis.py"])
    assert calls == ["random.random("]


@pytest.mark.checklist("OOB-03")
def test_codes_are_uniform_six_digit_strings() -> None:
    codes = [oob.new_code(6) for _ in range(10_000)]
    assert all(len(code) == 6 and code.isascii() and code.isdigit() for code in codes)
    assert len(set(codes)) > 9_900  # about 50 repeats are expected among 10,000 of 10**6
    leading_zero = sum(code[0] == "0" for code in codes) / len(codes)
    assert 0.08 < leading_zero < 0.12
    digits = Counter("".join(codes))
    expected = 60_000 / 10
    chi_square = sum((digits[d] - expected) ** 2 / expected for d in "0123456789")
    assert chi_square < 40  # 9 degrees of freedom: p < 0.00002 for a fair source

"""Section 8: what one second-factor check costs, side by side (issue 17).

The two sign-in checks as the challenge page runs them, through the synchronous driver on the
memory store, so the figures are the checks' own work (store round trips excluded):
  totp      `challenge.verify` with an authenticator app's code: a slot of the lockout taken,
            the user's record read, the secret decrypted, the code matched, the time step
            spent, the counters cleared
  webauthn  `challenge.verify` with a passkey's assertion (ES256, what most keys use): the
            same slot, the session's challenge taken, our checks of the client data and the
            authenticator data, py_webauthn's signature verification, the new sign count kept,
            the counters cleared
Every operation is a real success: each TOTP check has the next time step's code, each
assertion answers its own challenge (issued beforehand, outside the timing) with a counter one
higher than the last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyotp
from tests.support.webauthn import SoftAuthenticator

from bench.common import MFA_SECRET, interleaved_sync, scaled, simple_ratio, target
from mfa_middleware import MemoryStore, MFAConfig
from mfa_middleware.core import authenticators, challenge, passkeys
from mfa_middleware.core.context import Caller
from mfa_middleware.core.effects import get, update
from mfa_middleware.core.records import Authenticator, UserRecord, user_key
from mfa_middleware.core.webauthn import Credential, credential_to_dict, to_b64url
from mfa_middleware.runtime import Runtime

ORIGIN = "http://localhost"
START = 1_800_000_000.0


def runtime() -> Runtime:
    config = MFAConfig(
        store=MemoryStore(),
        secret_keys=[MFA_SECRET],
        webauthn_enabled=True,
        webauthn_rp_id="localhost",
        webauthn_origins=[ORIGIN],
    )
    return Runtime(config)


def caller(user: str, session: str, now: float) -> Caller:
    return Caller(user, session, session, now)


def totp_sampler(rt: Runtime) -> Callable[[int], int]:
    secret = pyotp.random_base32()
    app = Authenticator("app", "totp", "", START, secret=rt.keyring.encrypt(secret))
    rt.run(authenticators.add("t", START, app))
    totp, step = pyotp.TOTP(secret), [0]

    def sample(n: int) -> int:
        first = step[0]
        step[0] += n
        user = UserRecord.from_doc(rt.run(get(user_key("t"))))
        jobs = [
            (caller("t", "s", START + 30 * i), totp.at(START + 30 * i))
            for i in range(first + 1, first + n + 1)
        ]
        began = time.perf_counter_ns()
        for who, code in jobs:
            attempt = rt.run(challenge.verify(who, rt.params, user, "totp", code))
            assert attempt.ok
        return time.perf_counter_ns() - began

    return sample


def webauthn_sampler(rt: Runtime) -> Callable[[int], int]:
    key = SoftAuthenticator()
    handle = b"h" * 32
    credential = Credential(key.credential_id, key.cose_key(), created_at=START)
    item = Authenticator("key", "webauthn", "", START, credential=credential_to_dict(credential))
    rt.run(authenticators.add("w", START, item))
    rt.run(_set_handle("w", handle))
    rounds = [0]

    def sample(n: int) -> int:
        rounds[0] += 1
        user = UserRecord.from_doc(rt.run(get(user_key("w"))))
        jobs = []
        for i in range(n):  # a challenge per operation, each in its own session
            who = caller("w", f"r{rounds[0]}.{i}", START)
            options = json.loads(rt.run(passkeys.request_options(who, rt.params, user)))
            posted = key.assertion(options["challenge"], ORIGIN, "localhost", user_handle=handle)
            jobs.append((who, json.dumps(posted)))
        began = time.perf_counter_ns()
        for who, posted_json in jobs:
            attempt = rt.run(challenge.verify(who, rt.params, user, "webauthn", posted_json))
            assert attempt.ok, attempt
        return time.perf_counter_ns() - began

    return sample


def _set_handle(user_id: str, handle: bytes) -> Any:
    def change(doc: Any) -> Any:
        return replace(UserRecord.from_doc(doc), webauthn_handle=to_b64url(handle)).to_doc()

    return update(user_key(user_id), change)


def run() -> dict[str, Any]:
    rt = runtime()
    variants = {"totp": totp_sampler(rt), "webauthn": webauthn_sampler(rt)}
    summaries = interleaved_sync(variants, rounds=scaled(15, 3), target_ns=scaled(40, 2) * 10**6)
    totp, passkey = summaries["totp"], summaries["webauthn"]
    ratio = simple_ratio(passkey, totp)
    (t25, t75), (w25, w75) = totp.quartiles(), passkey.quartiles()
    return {
        "title": "8. One second-factor check (memory store, synchronous driver)",
        "columns": ["check", "median µs", "p25-p75 µs", "vs TOTP"],
        "rows": [
            ["TOTP code", f"{totp.median:.1f}", f"{t25:.1f}-{t75:.1f}", "1.00"],
            [
                "WebAuthn assertion (ES256)",
                f"{passkey.median:.1f}",
                f"{w25:.1f}-{w75:.1f}",
                f"{ratio['ratio']:.2f}" if ratio["ratio"] is not None else "-",
            ],
        ],
        "data": {"totp": totp.to_json(), "webauthn": passkey.to_json(), "ratio": ratio},
        "targets": [
            target(
                "factors.webauthn",
                "A WebAuthn verification next to a TOTP check (measured, no goal: both are"
                " once per sign-in, never on the verified-request path)",
                "reported",
                ratio["ratio"],
                None,
                f"TOTP {totp.median:.0f} µs, WebAuthn {passkey.median:.0f} µs",
            )
        ],
        "notes": [
            "Both are successful sign-ins; neither runs on a verified request, whose path the"
            " passkeys do not touch (sections 1-3).",
        ],
    }

"""TOTP/HOTP through the project's own wrapper (`core.otp`): RFC vectors, drift window, input
hygiene and secret generation (checklist TOTP-01, -03, -06, -08, -10)."""

from __future__ import annotations

import base64

import pytest

from mfa_middleware.core import otp
from mfa_middleware.core.otp import TotpParams

SEED_SHA1 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SEED_SHA256 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA===="
# The 64-byte ASCII seed "1234567890" * 6 + "1234", the one the RFC rows reproduce with
# (SECURITY_CHECKLIST.md section 1 prints the same base32).
SEED_SHA512 = "GEZDGNBVGY3TQOJQ" * 6 + "GEZDGNA="
SEEDS = {"SHA1": SEED_SHA1, "SHA256": SEED_SHA256, "SHA512": SEED_SHA512}

# RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits, X = 30, T0 = 0.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
RFC6238_CASES = [
    pytest.param(t, alg, code, id=f"{alg}-{t}")
    for t, *codes in RFC6238
    for alg, code in zip(("SHA1", "SHA256", "SHA512"), codes, strict=True)
]

# RFC 4226 Appendix D: HOTP(count) for the 20-byte ASCII seed, 6 digits.
RFC4226 = ["755224", "287082", "359152", "969429", "338314",
           "254676", "287922", "162583", "399871", "520489"]  # fmt: skip

SIX = TotpParams()  # 6 digits, 30 s, window 1, SHA1


def test_seeds_are_the_rfc_ascii_strings() -> None:
    assert base64.b32decode(SEED_SHA1) == b"12345678901234567890"
    assert base64.b32decode(SEED_SHA256) == b"12345678901234567890123456789012"
    assert base64.b32decode(SEED_SHA512) == b"1234567890" * 6 + b"1234"


@pytest.mark.parametrize(("t", "alg", "code"), RFC6238_CASES)
@pytest.mark.checklist("TOTP-01")
def test_rfc6238_code_at(t: int, alg: str, code: str) -> None:
    params = TotpParams(digits=8, algorithm=alg)
    assert otp.code_at(SEEDS[alg], t, params) == code


@pytest.mark.parametrize(("t", "alg", "code"), RFC6238_CASES)
@pytest.mark.checklist("TOTP-01")
def test_rfc6238_match_step_window_0(t: int, alg: str, code: str) -> None:
    params = TotpParams(digits=8, algorithm=alg, window=0)
    assert otp.match_step(SEEDS[alg], code, t, params) == t // 30


@pytest.mark.parametrize(("t", "alg", "code"), RFC6238_CASES)
def test_rfc6238_wrong_algorithm_does_not_match(t: int, alg: str, code: str) -> None:
    for other in SEEDS:
        if other != alg:
            params = TotpParams(digits=8, algorithm=other, window=0)
            assert otp.match_step(SEEDS[other], code, t, params) is None


@pytest.mark.parametrize(
    ("t", "code"),
    [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"),
     (1234567890, "005924"), (2000000000, "279037"), (20000000000, "353130")],
)  # fmt: skip
@pytest.mark.checklist("TOTP-01")
def test_rfc6238_six_digit_truncations(t: int, code: str) -> None:
    assert otp.code_at(SEED_SHA1, t, SIX) == code
    assert otp.match_step(SEED_SHA1, code, t, TotpParams(window=0)) == t // 30


@pytest.mark.parametrize(("count", "code"), list(enumerate(RFC4226)))
@pytest.mark.checklist("TOTP-01")
def test_rfc4226_hotp_via_totp_steps(count: int, code: str) -> None:
    params = TotpParams(period=30, window=0)
    assert otp.code_at(SEED_SHA1, count * 30, params) == code
    assert otp.code_at(SEED_SHA1, count * 30 + 29, params) == code  # same step
    assert otp.match_step(SEED_SHA1, code, count * 30, params) == count


def test_code_at_keeps_leading_zeros() -> None:
    code = otp.code_at(SEED_SHA1, 1234567890, TotpParams(digits=8))
    assert code == "89005924"
    six = otp.code_at(SEED_SHA1, 1234567890, SIX)
    assert six == "005924"
    assert len(six) == 6


T = 1111111109  # step 37037036, the code there is 081804


@pytest.mark.parametrize(("offset", "accepted"), [(-30, True), (0, True), (30, True),
                                                  (-60, False), (60, False), (-90, False),
                                                  (90, False)])  # fmt: skip
@pytest.mark.checklist("TOTP-03")
def test_drift_window_plus_minus_one(offset: int, accepted: bool) -> None:
    code = otp.code_at(SEED_SHA1, T + offset, SIX)
    step = otp.match_step(SEED_SHA1, code, T, TotpParams(window=1))
    if accepted:
        assert step == (T + offset) // 30
    else:
        assert step is None


@pytest.mark.checklist("TOTP-03")
def test_window_0_refuses_neighbouring_steps() -> None:
    params = TotpParams(window=0)
    assert otp.match_step(SEED_SHA1, otp.code_at(SEED_SHA1, T - 30, SIX), T, params) is None
    assert otp.match_step(SEED_SHA1, otp.code_at(SEED_SHA1, T + 30, SIX), T, params) is None
    assert otp.match_step(SEED_SHA1, otp.code_at(SEED_SHA1, T, SIX), T, params) == T // 30


def test_match_step_returns_the_step_number() -> None:
    assert otp.match_step(SEED_SHA1, "287082", 59, SIX) == 1
    assert otp.match_step(SEED_SHA1, "287082", 60, SIX) == 1  # previous step, inside drift
    assert otp.match_step(SEED_SHA1, "755224", 0, SIX) == 0
    assert otp.match_step(SEED_SHA1, "755224", 29, SIX) == 0


def test_match_step_never_returns_negative_steps() -> None:
    # At t=0 the window reaches step -1, which must not be evaluated or returned.
    for code in RFC4226[:2]:
        step = otp.match_step(SEED_SHA1, code, 0, SIX)
        assert step is not None
        assert step >= 0


def test_wrong_code_is_refused() -> None:
    right = otp.code_at(SEED_SHA1, T, SIX)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert otp.match_step(SEED_SHA1, wrong, T, SIX) is None


def test_wrong_secret_is_refused() -> None:
    other = otp.new_secret()
    code = otp.code_at(SEED_SHA1, T, SIX)
    assert otp.match_step(other, code, T, TotpParams(window=0)) is None


@pytest.mark.parametrize(
    "code",
    [
        "",
        "      ",
        " 081804",
        "081804 ",
        "081 804",
        "\uff10\uff18\uff11\uff18\uff10\uff14",  # full-width 081804
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width 123456
        "\u0660\u0668\u0661\u0668\u0660\u0664",  # Arabic-Indic digits
        "123456\n",
        "081804\n",
        "1234567",
        "12345",
        "12345a",
        "+81804",
        "-81804",
        "08180.",
        "0x1804",
        "9" * 1_000_000,
    ],
)
@pytest.mark.checklist("TOTP-08")
def test_is_well_formed_refuses(code: str) -> None:
    assert otp.is_well_formed(code, 6) is False


@pytest.mark.parametrize(
    "code", ["", "      ", "\uff10\uff18\uff11\uff18\uff10\uff14", "081804\n", " 081804", "0818040"]
)
@pytest.mark.checklist("TOTP-08")
def test_malformed_variants_of_the_right_code_never_match(code: str) -> None:
    # pyotp alone would NFKC-normalise full-width digits and accept them (TOTP-08).
    assert otp.match_step(SEED_SHA1, code, T, SIX) is None


def test_is_well_formed_accepts_ascii_digits_of_the_right_length() -> None:
    assert otp.is_well_formed("123456", 6)
    assert otp.is_well_formed("000000", 6)
    assert otp.is_well_formed("12345678", 8)
    assert not otp.is_well_formed("123456", 8)
    assert not otp.is_well_formed("12345678", 6)


@pytest.mark.checklist("TOTP-06")
def test_new_secret_has_at_least_160_bits() -> None:
    secret = otp.new_secret()
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    assert len(raw) >= 20


@pytest.mark.checklist("TOTP-06")
def test_new_secret_is_unique() -> None:
    secrets_ = {otp.new_secret() for _ in range(1000)}
    assert len(secrets_) == 1000


def test_new_secret_works_with_code_at_and_match_step() -> None:
    secret = otp.new_secret()
    code = otp.code_at(secret, T, SIX)
    assert otp.is_well_formed(code, 6)
    assert otp.match_step(secret, code, T, SIX) == T // 30


def test_provisioning_uri_and_grouping() -> None:
    uri = otp.provisioning_uri(SEED_SHA1, "alice@example.com", TotpParams(issuer="Acme"))
    assert uri.startswith("otpauth://totp/")
    assert f"secret={SEED_SHA1}" in uri
    assert "issuer=Acme" in uri
    assert otp.group_secret("ABCDEFGHIJ") == "ABCD EFGH IJ"
    assert otp.group_secret(SEED_SHA1).replace(" ", "") == SEED_SHA1

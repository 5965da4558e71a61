"""`MFAConfig` validation at startup (TOTP-02, TD-09, session lifetimes)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from mfa_middleware.config import MFAConfig, parse_duration
from mfa_middleware.errors import ConfigError
from mfa_middleware.stores.memory import MemoryStore

KEY = "k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe"
KEY2 = "n7Gh2Jk9Pq4Rs6Tu1Vw3Xy5Za8Bc0De-Lm4Q"


def config(**kw: Any) -> MFAConfig:
    kw.setdefault("secret_keys", [KEY])
    return MFAConfig(**kw)


def assert_field(exc: pytest.ExceptionInfo[ConfigError], name: str) -> None:
    assert exc.value.field == name
    assert f"MFAConfig.{name}" in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.checklist("TOTP-02")
def test_defaults() -> None:
    cfg = config()
    assert cfg.mode == "required"
    assert cfg.sessions.lifetime == 90 * 86400
    assert cfg.sessions.idle_timeout is None
    assert cfg.totp.period == 30
    assert cfg.totp.digits == 6
    assert cfg.attempts.base_lockout == 60.0
    assert cfg.attempts.max_lockout == 3600.0


def test_config_is_frozen() -> None:
    cfg = config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mode = "off"  # type: ignore[misc]


# --- secret keys (TD-09) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        [],
        (),
        None,
        KEY,  # a bare string, not a list
        KEY.encode(),
    ],
)
@pytest.mark.checklist("TD-09")
def test_missing_keys_are_refused(keys: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        MFAConfig(secret_keys=keys)
    assert_field(exc, "secret_keys")


def test_secret_keys_is_required() -> None:
    with pytest.raises(TypeError):
        MFAConfig()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "8bytekey",
        "x" * 31,
        "Ab3$" * 7 + "Ab3",  # 31 chars, varied
        b"k3Yq9Zr7Lp3Kd8Wm2Nv5Bt6Yc4Hj0Fs-Xa1Pe",  # bytes, not str
        12345678901234567890123456789012345,
    ],
)
@pytest.mark.checklist("TD-09")
def test_short_or_non_string_keys_are_refused(key: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        MFAConfig(secret_keys=[key])
    assert_field(exc, "secret_keys")


@pytest.mark.parametrize(
    "key",
    [
        "changeme",
        "secret",
        "password",
        "changeme" + " " * 30,
        "  PASSWORD  " + " " * 30,
        "changeme" * 4,
        "password" * 4,
        "secret" * 6,
        "a" * 64,
        "ab" * 32,
        "1234567" * 6,  # seven distinct characters
    ],
)
@pytest.mark.checklist("TD-09")
def test_weak_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        MFAConfig(secret_keys=[key])
    assert_field(exc, "secret_keys")


@pytest.mark.checklist("TD-09")
def test_one_weak_key_among_good_ones_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        MFAConfig(secret_keys=[KEY, "changeme" * 4, KEY2])
    assert_field(exc, "secret_keys")


def test_rotation_list_is_accepted() -> None:
    cfg = MFAConfig(secret_keys=[KEY, KEY2])
    assert list(cfg.secret_keys) == [KEY, KEY2]


def test_key_of_exactly_32_varied_characters_is_accepted() -> None:
    key = "abcdefgh" * 4
    assert len(key) == 32
    assert MFAConfig(secret_keys=[key]).secret_keys == [key]


# --- choices and integer ranges ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["off", "optional", "required"])
def test_modes(mode: str) -> None:
    assert config(mode=mode).mode == mode


@pytest.mark.parametrize("mode", ["on", "", "Required", "REQUIRED", None, True])
def test_bad_mode(mode: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        config(mode=mode)
    assert_field(exc, "mode")
    assert "required" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("totp_period", 121),
        ("totp_period", 14),
        ("totp_period", 0),
        ("totp_period", 30.0),
        ("totp_period", "30"),
        ("totp_period", True),
        ("totp_digits", 5),
        ("totp_digits", 9),
        ("totp_digits", 0),
        ("totp_digits", -6),
        ("totp_digits", "6"),
        ("totp_digits", True),
        ("totp_window", 3),
        ("totp_window", -1),
        ("max_attempts", 0),
        ("max_attempts", 21),
        ("max_form_bytes", 10),
    ],
)
@pytest.mark.checklist("TOTP-02", "TOTP-03", "RL-01")
def test_integer_out_of_range(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        config(**{name: value})
    assert_field(exc, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("totp_period", 120), ("totp_period", 30), ("totp_period", 15), ("totp_digits", 6),
     ("totp_digits", 8), ("totp_window", 0), ("totp_window", 2)],
)  # fmt: skip
@pytest.mark.checklist("TOTP-02", "TOTP-03")
def test_integer_in_range(name: str, value: int) -> None:
    assert getattr(config(**{name: value}), name) == value


@pytest.mark.checklist("RL-01")
def test_failure_ceiling_not_below_max_attempts() -> None:
    with pytest.raises(ConfigError) as exc:
        config(max_attempts=10, failure_ceiling=9)
    assert_field(exc, "failure_ceiling")
    with pytest.raises(ConfigError) as exc:
        config(failure_ceiling=101)
    assert_field(exc, "failure_ceiling")
    assert config(max_attempts=10, failure_ceiling=10).failure_ceiling == 10


@pytest.mark.parametrize("alg", ["MD5", "sha1", "", "SHA3"])
def test_bad_algorithm(alg: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(totp_algorithm=alg)
    assert_field(exc, "totp_algorithm")


@pytest.mark.parametrize("value", ["none", "None", "", "LAX"])
def test_bad_samesite(value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(cookie_samesite=value)
    assert_field(exc, "cookie_samesite")


@pytest.mark.parametrize("prefix", ["", "/", "_mfa", "/_mfa/", "mfa/"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(prefix=prefix)
    assert_field(exc, "prefix")


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "x" * 65, "s\u00e9ssion"])
def test_bad_cookie_name(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(cookie_name=name)
    assert_field(exc, "cookie_name")


def test_store_must_be_a_store() -> None:
    with pytest.raises(ConfigError) as exc:
        config(store="sqlite:///mfa.db")
    assert_field(exc, "store")
    store = MemoryStore()
    assert config(store=store).store is store


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90d", 90 * 86400.0),
        ("12h", 43200.0),
        ("30m", 1800.0),
        ("45s", 45.0),
        ("2w", 1_209_600.0),
        ("3600", 3600.0),
        (" 1.5h ", 5400.0),
        (timedelta(hours=2), 7200.0),
        (timedelta(days=1, minutes=1), 86460.0),
        (3600, 3600.0),
        (0.5, 0.5),
        ("90 days", 90 * 86400.0),  # in words, as the admin page shows it (issue 21)
        ("1 Day", 86400.0),
        ("12 hours", 43200.0),
        ("30 min", 1800.0),
    ],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration("session_lifetime", value) == seconds
    cfg = config(session_lifetime=value)
    assert cfg.session_lifetime == value  # as given: the part holds the seconds
    assert cfg.sessions.lifetime == seconds
    assert isinstance(cfg.sessions.lifetime, float)


@pytest.mark.parametrize(
    "value",
    [
        "90 dayz",
        "1y",
        "abc",
        "",
        " ",
        "-5m",
        "5 m s",
        "h",
        "0s",
        "0",
        0,
        -1,
        timedelta(0),
        timedelta(seconds=-1),
        True,
        [],
        None,
    ],
)
def test_bad_durations(value: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        config(session_lifetime=value)
    assert_field(exc, "session_lifetime")


@pytest.mark.parametrize("name", ["lockout", "max_lockout", "idle_timeout"])
def test_bad_durations_name_their_field(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config(**{name: "forever"})
    assert_field(exc, name)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "inf"])
def test_non_finite_durations_are_refused(value: Any) -> None:
    """A NaN lifetime makes `now - login_at >= lifetime` always false: sessions never end."""
    with pytest.raises(ConfigError) as exc:
        config(session_lifetime=value)
    assert_field(exc, "session_lifetime")


def test_idle_timeout_optional_and_parsed() -> None:
    assert config().sessions.idle_timeout is None
    cfg = config(idle_timeout="15m")
    assert cfg.sessions.idle_timeout == 900.0


@pytest.mark.parametrize(
    ("lifetime", "idle"), [("1h", "1h"), ("1h", "2h"), ("30m", 1800), ("12h", timedelta(days=1))]
)
def test_idle_not_shorter_than_lifetime_is_refused(lifetime: Any, idle: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        config(session_lifetime=lifetime, idle_timeout=idle)
    assert_field(exc, "idle_timeout")


def test_idle_just_below_lifetime_is_accepted() -> None:
    cfg = config(session_lifetime="1h", idle_timeout=3599)
    assert cfg.sessions.idle_timeout == 3599.0


# --- presets and derived values ----------------------------------------------------------


@pytest.mark.checklist("SES-07", "SES-08")
def test_aal2_preset() -> None:
    cfg = MFAConfig.aal2(secret_keys=[KEY])
    assert cfg.sessions.lifetime == 12 * 3600
    assert cfg.sessions.idle_timeout == 30 * 60
    assert cfg.mode == "required"


def test_aal2_preset_accepts_overrides_and_still_validates() -> None:
    cfg = MFAConfig.aal2(secret_keys=[KEY], idle_timeout="15m", mode="optional")
    assert cfg.sessions.idle_timeout == 900
    assert cfg.sessions.lifetime == 12 * 3600
    assert cfg.mode == "optional"
    with pytest.raises(ConfigError) as exc:
        MFAConfig.aal2(secret_keys=["changeme"])
    assert_field(exc, "secret_keys")
    with pytest.raises(ConfigError) as exc:
        MFAConfig.aal2(secret_keys=[KEY], idle_timeout="12h")
    assert_field(exc, "idle_timeout")


def test_session_cookie_host_prefix_only_when_secure() -> None:
    assert config().sessions.cookie_name == "__Host-mfa_session"
    assert config(cookie_secure=True, cookie_name="sid").sessions.cookie_name == "__Host-sid"
    assert config(cookie_secure=False).sessions.cookie_name == "mfa_session"
    plain = config(cookie_secure=False, cookie_name="sid").sessions.cookie_name
    assert not plain.startswith("__Host-")


def test_option_names_cover_the_fields() -> None:
    names = MFAConfig.option_names()
    assert names[0] == "secret_keys"
    assert {"mode", "session_lifetime", "idle_timeout", "totp_period"} <= set(names)


@pytest.mark.checklist("TOTP-02")
def test_config_error_carries_allowed_values() -> None:
    with pytest.raises(ConfigError) as exc:
        config(totp_period=121)
    assert exc.value.problem
    assert exc.value.allowed == "an integer from 15 to 120"
    assert "121" in str(exc.value)

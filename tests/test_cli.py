"""The `mfa-admin` console script: installed, answers --help and --version, and runs every
command against a SQLite store (as a subprocess, and in-process through `cli.main`)."""

from __future__ import annotations

import getpass
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfa_middleware import cli
from mfa_middleware.config import MFAConfig
from mfa_middleware.core.effects import Key
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores.sqlite import SQLiteStore
from mfa_middleware.testing import FixedClock, OutageStore

ENROLL_CODE = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")

SCRIPT = Path(sys.executable).parent / "mfa-admin"


def test_console_script_help() -> None:
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "usage: mfa-admin" in result.stdout


def test_version_names_the_package_version() -> None:
    result = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("mfa-admin 0.")


def test_main_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    assert "Operate mfa_middleware" in capsys.readouterr().out


# --- every command, as the installed script, against a SQLite store ------------------------

KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 40 characters, only for these tests
ALICE = Key("user", "alice")
SETTINGS = Key("settings", "_", "global")


def _env(**extra: str) -> dict[str, str]:
    unset = ("MFA_CONFIG", "MFA_STORE_URL", "MFA_SECRET_KEYS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(extra)
    return env


WITH_KEYS = _env(MFA_SECRET_KEYS=KEY)


def admin(
    *args: str, env: dict[str, str] | None = None, stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env if env is not None else _env(),
        stdin=stdin,
        timeout=30,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "mfa.sqlite3"
    store = SQLiteStore(path)
    store.put(ALICE, {"method": "totp"})
    store.close()
    return path


@pytest.fixture
def url(db: Path) -> str:
    return f"sqlite://{db}"  # db is absolute: sqlite:///tmp/.../mfa.sqlite3


def doc(db: Path, key: Key) -> dict[str, Any]:
    store = SQLiteStore(db)
    try:
        return store.get(key) or {}
    finally:
        store.close()


def test_url_fixture_is_the_documented_absolute_form(url: str) -> None:
    assert url.startswith("sqlite:///")


def test_status_json(url: str) -> None:
    assert as_json(admin("--store", url, "--json", "status", "alice")) == {
        "user": "alice",
        "enrolled": True,
        "method": "totp",
        "exempt": False,
        "exempt_browser": False,
        "required": False,
        "failures": 0,
        "locked_for_seconds": 0.0,
        "locked": False,
        "authenticators": [
            {
                "id": "legacy",  # a record written before users could have several
                "kind": "totp",
                "name": "",
                "created_at": 0.0,
                "last_used_at": 0.0,
                "default": True,
                "destination": "",
            }
        ],
    }


def test_status_human_readable_prints_key_value_lines(url: str) -> None:
    result = admin("--store", url, "status", "alice")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "user: alice"
    assert "enrolled: True" in lines
    assert "method: totp" in lines
    assert "locked: False" in lines
    assert all(": " in line or line.endswith(":") or line.startswith("  - ") for line in lines)
    listed = "  - id=legacy, kind=totp, name=, created_at=never, last_used_at=never, default=True"
    assert listed + ", destination=" in lines
    assert not result.stdout.lstrip().startswith("{")


def test_unknown_user_exits_2(url: str, db: Path) -> None:
    result = admin("--store", url, "--json", "exempt", "ghost")
    assert result.returncode == 2
    assert "unknown user" in result.stderr
    assert "'ghost'" in result.stderr
    assert result.stdout == ""
    assert doc(db, Key("user", "ghost")) == {}  # nothing written for a user that is not there


def test_status_of_unknown_user_exits_2(url: str, capsys: Any) -> None:
    code, out = run_main("--store", url, "status", "ghost")
    assert code == 2
    assert out == ""
    assert "unknown user 'ghost'" in capsys.readouterr().err


def test_logout_user_bumps_their_epoch(url: str, db: Path) -> None:
    assert as_json(admin("--store", url, "--json", "logout", "alice")) == {
        "logged_out": "alice",
        "devices_revoked": False,
    }
    assert doc(db, ALICE)["epoch"] == 1
    assert doc(db, ALICE)["method"] == "totp"  # the enrollment is kept
    assert doc(db, ALICE).get("device_epoch", 0) == 0  # trusted devices are kept
    assert doc(db, SETTINGS).get("global_epoch", 0) == 0  # nobody else is logged out


def test_logout_all_with_yes_bumps_the_global_epoch(url: str, db: Path) -> None:
    result = admin("--store", url, "--json", "logout", "--all", "--yes")
    assert as_json(result) == {"logged_out": "all", "devices_revoked": False}
    assert doc(db, SETTINGS)["global_epoch"] == 1
    assert doc(db, SETTINGS).get("device_epoch", 0) == 0
    assert doc(db, ALICE).get("epoch", 0) == 0


def test_logout_with_devices_also_bumps_the_device_epochs(url: str, db: Path) -> None:
    result = admin("--store", url, "--json", "logout", "alice", "--devices")
    assert as_json(result) == {"logged_out": "alice", "devices_revoked": True}
    assert doc(db, ALICE)["epoch"] == 1
    assert doc(db, ALICE)["device_epoch"] == 1
    code, out = run_main("--store", url, "--json", "logout", "--all", "--yes", "--devices")
    assert code == 0
    assert json.loads(out) == {"logged_out": "all", "devices_revoked": True}
    assert doc(db, SETTINGS)["global_epoch"] == 1
    assert doc(db, SETTINGS)["device_epoch"] == 1
    assert doc(db, ALICE)["device_epoch"] == 1  # the global epoch covers every user


def test_logout_all_without_yes_and_no_terminal_refuses(url: str, db: Path) -> None:
    result = admin("--store", url, "logout", "--all")
    assert result.returncode == 2
    assert "Refusing without --yes" in result.stderr
    assert "no terminal" in result.stderr
    assert doc(db, SETTINGS).get("global_epoch", 0) == 0


@pytest.mark.parametrize(
    ("command", "field", "value"),
    [
        ("exempt", "exempt", True),
        ("unexempt", "exempt", False),
        ("require", "required", True),
        ("unrequire", "required", False),
    ],
)
def test_flag_commands(url: str, db: Path, command: str, field: str, value: bool) -> None:
    SQLiteStore(db).put(ALICE, {"method": "totp", field: not value})
    expected: dict[str, object] = {"user": "alice", field: value}
    if command == "exempt":
        expected["browser"] = False
    assert as_json(admin("--store", url, "--json", command, "alice")) == expected
    assert doc(db, ALICE)[field] is value
    assert doc(db, ALICE)["method"] == "totp"


def test_exempt_browser_flag_exempts_browser_logins_too(url: str, db: Path) -> None:
    SQLiteStore(db).put(ALICE, {"method": "totp"})
    result = as_json(admin("--store", url, "--json", "exempt", "alice", "--browser"))
    assert result == {"user": "alice", "exempt": True, "browser": True}
    assert doc(db, ALICE)["exempt_browser"] is True
    as_json(admin("--store", url, "--json", "unexempt", "alice"))
    assert doc(db, ALICE)["exempt"] is False
    assert doc(db, ALICE)["exempt_browser"] is False


def test_mode_off_then_optional_bumps_the_enroll_epoch(url: str, db: Path) -> None:
    assert as_json(admin("--store", url, "--json", "mode", "off", "--yes")) == {"mode": "off"}
    assert doc(db, SETTINGS)["mode"] == "off"
    assert doc(db, SETTINGS)["enroll_epoch"] == 0
    assert as_json(admin("--store", url, "--json", "mode", "optional")) == {"mode": "optional"}
    assert doc(db, SETTINGS)["mode"] == "optional"
    assert doc(db, SETTINGS)["enroll_epoch"] == 1
    # alice enrolled before 2FA was switched off: she must enroll again
    code, out = run_main("--store", url, "--json", "status", "alice")
    assert code == 0
    assert json.loads(out)["enrolled"] is False


@pytest.mark.parametrize(("duration", "seconds"), [("90d", 90 * 86400.0), ("12h", 43200.0)])
def test_session_lifetime(url: str, db: Path, duration: str, seconds: float) -> None:
    result = admin("--store", url, "--json", "session-lifetime", duration)
    assert as_json(result) == {"session_lifetime_seconds": seconds}
    assert doc(db, SETTINGS)["session_lifetime"] == seconds


def test_session_lifetime_bad_value_exits_2(url: str, db: Path) -> None:
    result = admin("--store", url, "session-lifetime", "soon")
    assert result.returncode == 2
    assert "bad duration 'soon'" in result.stderr
    assert doc(db, SETTINGS).get("session_lifetime") is None


def test_store_url_from_the_environment(url: str, db: Path) -> None:
    env = _env(MFA_STORE_URL=url)
    assert as_json(admin("--json", "status", "alice", env=env))["method"] == "totp"
    assert as_json(admin("--json", "logout", "alice", env=env))["logged_out"] == "alice"
    assert doc(db, ALICE)["epoch"] == 1


def test_no_config_and_no_store_exits_2(tmp_path: Path) -> None:
    result = admin("status", "alice")
    assert result.returncode == 2
    assert "--config, --store, $MFA_CONFIG or $MFA_STORE_URL" in result.stderr
    assert not list(tmp_path.iterdir())  # no default store was created anywhere here


def test_bad_store_url_exits_2() -> None:
    result = admin("--store", "postgres://db/mfa", "status", "alice")
    assert result.returncode == 2
    assert "unknown store URL" in result.stderr


# --- --config module:attr -------------------------------------------------------------------

CONFIG_MODULE = """
from mfa_middleware import MFAConfig
from mfa_middleware.stores.sqlite import SQLiteStore

MFA_CONFIG = MFAConfig(secret_keys=[{key!r}], store=SQLiteStore({db!r}))


def make_config():
    # another default mode, so a test can tell this config was used
    return MFAConfig(secret_keys=[{key!r}], store=SQLiteStore({db!r}), mode="off")


NOT_A_CONFIG = 42
"""


@pytest.fixture
def config_module(tmp_path: Path, db: Path) -> str:
    name = f"mfa_cli_settings_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(CONFIG_MODULE.format(key=KEY, db=str(db)))
    return name


def _config_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    return _env(PYTHONPATH=path, **extra)


def test_config_attribute(tmp_path: Path, db: Path, config_module: str) -> None:
    env = _config_env(tmp_path)
    result = admin("--config", f"{config_module}:MFA_CONFIG", "--json", "exempt", "alice", env=env)
    assert as_json(result) == {"user": "alice", "exempt": True, "browser": False}
    assert doc(db, ALICE)["exempt"] is True


def test_config_function_and_its_defaults(tmp_path: Path, db: Path, config_module: str) -> None:
    env = _config_env(tmp_path)
    target = f"{config_module}:make_config"
    result = admin("--config", target, "--json", "mode", "optional", env=env)
    assert as_json(result) == {"mode": "optional"}
    # the function's config says mode="off": switching on from it bumps the enroll epoch
    assert doc(db, SETTINGS)["mode"] == "optional"
    assert doc(db, SETTINGS)["enroll_epoch"] == 1


def test_config_from_the_environment(tmp_path: Path, config_module: str) -> None:
    env = _config_env(tmp_path, MFA_CONFIG=config_module)  # attr defaults to MFA_CONFIG
    assert as_json(admin("--json", "status", "alice", env=env))["user"] == "alice"


@pytest.mark.parametrize("target", ["no_such_module_for_mfa_tests:CONFIG", "{module}:missing"])
def test_bad_config_path_exits_2(tmp_path: Path, config_module: str, target: str) -> None:
    target = target.format(module=config_module)
    result = admin("--config", target, "status", "alice", env=_config_env(tmp_path))
    assert result.returncode == 2
    assert f"cannot load the config {target!r}" in result.stderr


# --- the rest in-process: cli.main(..., out=) -----------------------------------------------


def run_main(*argv: str, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out, **kwargs)
    return code, out.getvalue()


def test_not_an_mfa_config_exits_2(
    tmp_path: Path, config_module: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = run_main("--config", f"{config_module}:NOT_A_CONFIG", "status", "alice")
    assert code == 2
    assert out == ""
    assert "is not an MFAConfig" in capsys.readouterr().err


def test_store_url_variable_is_read_in_process(
    url: str, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MFA_CONFIG", raising=False)
    monkeypatch.setenv("MFA_STORE_URL", url)
    code, out = run_main("--json", "require", "alice")
    assert code == 0
    assert json.loads(out) == {"user": "alice", "required": True}
    assert doc(db, ALICE)["required"] is True


def test_mode_transitions_and_the_enroll_epoch(url: str, db: Path) -> None:
    def mode(name: str) -> int:
        code, out = run_main("--store", url, "--json", "mode", name, "--yes")
        assert code == 0
        assert json.loads(out) == {"mode": name}
        assert doc(db, SETTINGS)["mode"] == name
        return int(doc(db, SETTINGS)["enroll_epoch"])

    assert mode("optional") == 0  # from the default "required": no new enrollment
    assert mode("required") == 0
    assert mode("off") == 0
    assert mode("off") == 0
    assert mode("required") == 1  # switched on again from off
    assert mode("optional") == 1
    assert mode("off") == 1
    assert mode("optional") == 2


def test_mode_without_an_argument_shows_the_mode_in_force(url: str, db: Path) -> None:
    assert as_json(admin("--store", url, "--json", "mode")) == {"mode": "required"}  # default
    result = admin("--store", url, "mode")
    assert (result.returncode, result.stdout) == (0, "mode: required\n")
    as_json(admin("--store", url, "--json", "mode", "optional"))
    assert as_json(admin("--store", url, "--json", "mode")) == {"mode": "optional"}
    assert doc(db, SETTINGS)["mode"] == "optional"  # showing it changed nothing


def test_mode_off_asks_first_and_refuses_without_a_terminal(url: str, db: Path) -> None:
    result = admin("--store", url, "mode", "off")
    assert result.returncode == 2
    assert "Turn two-step verification off for everyone?" in result.stderr
    assert "Refusing without --yes" in result.stderr
    assert doc(db, SETTINGS) == {}
    assert as_json(admin("--store", url, "--json", "mode", "off", "--yes")) == {"mode": "off"}
    assert admin("--store", url, "mode", "off").returncode == 0  # off already: nothing to ask


@pytest.mark.parametrize(("answer", "done"), [("y\n", True), ("\n", False)])
def test_mode_off_asks_on_a_terminal(
    url: str, db: Path, monkeypatch: pytest.MonkeyPatch, answer: str, done: bool
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    code, out = run_main("--store", url, "mode", "off")
    assert out.startswith("Turn two-step verification off for everyone?")
    assert "everyone sets it up again. [y/N] " in out
    assert code == (0 if done else 2)
    assert doc(db, SETTINGS).get("mode") == ("off" if done else None)


def test_a_mistyped_sqlite_path_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    typo = tmp_path / "mfa.sqlite"  # the app's file is mfa.sqlite3
    result = admin("--store", f"sqlite://{typo}", "status", "alice")
    assert result.returncode == 2
    assert f"no SQLite database at {typo}" in result.stderr
    assert "three slashes" in result.stderr
    assert not typo.exists()
    relative = admin("--store", "sqlite:nowhere/mfa.sqlite3", "mode", env=_env())
    assert relative.returncode == 2
    assert "no SQLite database at" in relative.stderr


def test_devices_and_status_print_times_people_read(url: str, db: Path) -> None:
    store = SQLiteStore(db)
    store.put(
        Key("device", "alice", "d1"),
        {"name": "Firefox on Linux", "created_at": 1.7e9, "last_used": 1_700_003_600.0},
    )
    store.close()
    result = admin("--store", url, "devices", "alice")
    assert result.returncode == 0, result.stderr
    assert "created_at=2023-11-14 22:13 UTC" in result.stdout
    assert "last_used=2023-11-14 23:13 UTC" in result.stdout
    assert "1700003600" not in result.stdout
    listed = as_json(admin("--store", url, "--json", "devices", "alice"))["devices"]
    assert listed[0]["last_used"] == 1_700_003_600.0  # JSON keeps numbers for scripts


def test_users_are_named_by_id_name_or_address_and_a_shared_name_is_refused(
    url: str, db: Path
) -> None:
    store = SQLiteStore(db)
    store.put(Key("directory", "_", "1"), {"name": "Bob", "login": "bob", "email": "b@x.test"})
    store.put(Key("directory", "_", "2"), {"name": "Bob", "login": "bob2", "email": "c@x.test"})
    store.put(Key("user", "1"), {"exempt": True})
    store.close()
    assert as_json(admin("--store", url, "--json", "status", "b@x.test"))["user"] == "1"
    assert as_json(admin("--store", url, "--json", "status", "bob2"))["user"] == "2"
    assert as_json(admin("--store", url, "--json", "status", "1"))["exempt"] is True
    shared = admin("--store", url, "status", "Bob")
    assert shared.returncode == 2
    assert "several users are called 'Bob': say which by user id (1, 2)" in shared.stderr


def test_unknown_mode_is_refused_by_the_parser(url: str, db: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_main("--store", url, "mode", "sometimes")
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert doc(db, SETTINGS) == {}


def test_logout_needs_a_user_or_all(url: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_main("--store", url, "logout")
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("30m", 1800.0),
        ("1.5h", 5400.0),
        ("45", 45.0),
        ("2w", 1209600.0),
        ("12 hours", 43200.0),  # as the admin page shows it
        ("90 days", 90 * 86400.0),
    ],
)
def test_session_lifetime_forms(url: str, db: Path, duration: str, seconds: float) -> None:
    code, out = run_main("--store", url, "session-lifetime", duration)
    assert code == 0
    assert out == f"session_lifetime_seconds: {seconds}\n"
    assert doc(db, SETTINGS)["session_lifetime"] == seconds


@pytest.mark.parametrize("duration", ["0", "0d", "5x", "12 hourz", "inf", "nan", ""])
def test_session_lifetime_bad_values(url: str, db: Path, duration: str, capsys: Any) -> None:
    code, _ = run_main("--store", url, "session-lifetime", duration)
    assert code == 2
    assert "bad duration" in capsys.readouterr().err
    assert "session_lifetime" not in doc(db, SETTINGS)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "done"), [("y\n", True), ("YES\n", True), ("n\n", False)])
def test_logout_all_asks_on_a_terminal(
    url: str, db: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, answer: str, done: bool
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    code, out = run_main("--store", url, "logout", "--all")
    captured = capsys.readouterr()
    prompt = "Log out every user of every session? [y/N] "
    assert out.startswith(prompt)  # asked on the command's own output stream
    if done:
        assert code == 0
        assert out == prompt + "logged_out: all\ndevices_revoked: False\n"
        assert doc(db, SETTINGS)["global_epoch"] == 1
    else:
        assert code == 2
        assert "cancelled" in captured.err
        assert doc(db, SETTINGS).get("global_epoch", 0) == 0


@pytest.mark.checklist("RST-10")
def test_events_name_the_cli_actor(db: Path) -> None:
    events: list[dict[str, Any]] = []
    config = MFAConfig(secret_keys=[KEY], store=SQLiteStore(db), on_event=events.append)
    runtime = Runtime(config)
    assert run_main("logout", "alice", runtime=runtime)[0] == 0
    assert run_main("logout", "--all", "--yes", runtime=runtime)[0] == 0
    assert [e["event"] for e in events] == ["forced_logout", "all_sessions_cleared"]
    assert events[0]["user"] == "alice"
    assert all(e["actor"] == f"cli:{getpass.getuser()}" for e in events)


def test_custom_resolver_maps_names_to_ids(db: Path, capsys: Any) -> None:
    runtime = Runtime(MFAConfig(secret_keys=[KEY], store=SQLiteStore(db)))
    names = {"Alice Liddell": "alice"}
    code, out = run_main("--json", "exempt", "Alice Liddell", runtime=runtime, resolve=names.get)
    assert code == 0
    assert json.loads(out) == {"user": "alice", "exempt": True, "browser": False}
    assert doc(db, ALICE)["exempt"] is True
    code, _ = run_main("exempt", "alice", runtime=runtime, resolve=names.get)
    assert code == 2
    assert "unknown user 'alice'" in capsys.readouterr().err


def broken_store() -> OutageStore:
    store = OutageStore()
    store.down = True
    return store


def test_store_failure_exits_1(capsys: Any) -> None:
    runtime = Runtime(MFAConfig(secret_keys=[KEY], store=broken_store()))
    code, out = run_main("mode", "off", "--yes", runtime=runtime)
    assert code == 1
    assert out == ""
    assert "the store is unreachable" in capsys.readouterr().err
    code, _ = run_main("status", "alice", runtime=runtime)
    assert code == 1


def test_new_flag_exempts_a_user_without_a_record(url: str, db: Path, capsys: Any) -> None:
    code, _ = run_main("--store", url, "exempt", "svc-new")
    assert code == 2
    assert "pass --new" in capsys.readouterr().err
    code, out = run_main("--store", url, "--json", "exempt", "svc-new", "--new")
    assert code == 0
    assert json.loads(out) == {"user": "svc-new", "exempt": True, "browser": False}
    assert doc(db, Key("user", "svc-new"))["exempt"] is True


@pytest.mark.checklist("TD-10")
def test_devices_and_revoke_device(url: str, db: Path, capsys: Any) -> None:
    store = SQLiteStore(db)
    store.put(Key("user", "alice"), {"method": "totp"})
    store.put(Key("device", "alice", "dev1"), {"name": "Chrome on macOS", "last_used": 5.0})
    code, out = run_main("--store", url, "--json", "devices", "alice")
    assert code == 0
    listed = json.loads(out)["devices"]
    assert [d["device"] for d in listed] == ["dev1"]
    assert listed[0]["name"] == "Chrome on macOS"
    assert listed[0]["trusted"] is False
    code, out = run_main("--store", url, "devices", "alice")
    assert "  - device=dev1, name=Chrome on macOS" in out
    code, out = run_main("--store", url, "revoke-device", "alice", "dev1")
    assert code == 0
    assert store.get(Key("device", "alice", "dev1")) is None
    code, _ = run_main("--store", url, "revoke-device", "alice", "dev1")
    assert code == 2
    assert "has no device" in capsys.readouterr().err


# --- reset -----------------------------------------------------------------------------------


def _enrolled_with_devices_and_codes(db: Path) -> None:
    store = SQLiteStore(db)
    for user in ("alice", "bob"):
        store.put(
            Key("user", user),
            {
                "method": "totp",
                "totp_secret": "ciphertext",
                "last_totp_step": 7,
                "enrolled_at": 5.0,
                "epoch": 2,
                "device_epoch": 1,
                "exempt": False,
                "required": True,
            },
        )
        store.put(Key("recovery", user), {"hashes": [["salt", "digest"]], "created_at": 5.0})
        store.put(Key("device", user, "dev1"), {"name": "Laptop", "trusted_until": 9e9})
        store.put(Key("device", user, "dev2"), {"name": "Phone"})
        store.put(Key("throttle", user), {"failures": 3})
    store.close()


def _devices(db: Path, user: str) -> list[str]:
    store = SQLiteStore(db)
    try:
        return [name for name, _ in store.scan("device", user)]
    finally:
        store.close()


def test_reset_clears_the_user_their_devices_and_recovery_codes(url: str, db: Path) -> None:
    _enrolled_with_devices_and_codes(db)
    bob_before = doc(db, Key("user", "bob"))
    result = admin("--store", url, "--json", "reset", "alice", "--yes", env=WITH_KEYS)
    answer = as_json(result)
    assert answer.keys() == {"reset", "enrollment_code"}  # no address known: handed over
    assert answer["reset"] == "alice"
    assert ENROLL_CODE.fullmatch(answer["enrollment_code"])
    record = doc(db, ALICE)
    assert record["method"] is None
    assert record["totp_secret"] is None
    assert record["epoch"] == 3  # every session of hers ends
    assert record["device_epoch"] == 2
    assert record["required"] is True  # an ops flag, kept
    assert doc(db, Key("recovery", "alice")) == {}
    assert doc(db, Key("throttle", "alice")) == {}
    assert _devices(db, "alice") == []
    # bob is untouched
    assert doc(db, Key("user", "bob")) == bob_before
    assert doc(db, Key("recovery", "bob"))["hashes"] == [["salt", "digest"]]
    assert _devices(db, "bob") == ["dev1", "dev2"]
    status = as_json(admin("--store", url, "--json", "status", "alice"))
    assert status["enrolled"] is False
    assert status["failures"] == 0


def test_reset_takes_json_after_the_command(url: str, db: Path) -> None:
    """The form the issue gives: `mfa-admin --store URL reset alice --yes --json`."""
    _enrolled_with_devices_and_codes(db)
    result = admin("--store", url, "reset", "alice", "--yes", "--json", env=WITH_KEYS)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["reset"] == "alice"
    assert ENROLL_CODE.fullmatch(answer["enrollment_code"])
    assert doc(db, ALICE)["method"] is None
    assert doc(db, ALICE)["epoch"] == 3
    assert _devices(db, "alice") == []
    assert doc(db, Key("recovery", "alice")) == {}


def test_reset_without_yes_and_no_terminal_refuses(url: str, db: Path) -> None:
    _enrolled_with_devices_and_codes(db)
    before = doc(db, ALICE)
    result = admin("--store", url, "reset", "alice", env=WITH_KEYS)
    assert result.returncode == 2
    assert "Refusing without --yes" in result.stderr
    assert "Reset two-step verification of alice?" in result.stderr
    assert doc(db, ALICE) == before
    assert _devices(db, "alice") == ["dev1", "dev2"]
    assert doc(db, Key("recovery", "alice"))["hashes"] == [["salt", "digest"]]


def test_reset_with_a_store_but_not_the_apps_keys_refuses(url: str, db: Path) -> None:
    """The code would be signed with a throwaway key, and the app could never accept it."""
    _enrolled_with_devices_and_codes(db)
    before = doc(db, ALICE)
    result = admin("--store", url, "--json", "reset", "alice", "--yes")
    assert result.returncode == 2
    assert "reset needs the app's secret keys" in result.stderr
    assert "--config" in result.stderr
    assert "MFA_SECRET_KEYS" in result.stderr
    assert doc(db, ALICE) == before  # nothing was changed


def test_reset_of_an_unknown_user_exits_2(url: str, db: Path) -> None:
    result = admin("--store", url, "reset", "ghost", "--yes", env=WITH_KEYS)
    assert result.returncode == 2
    assert "unknown user 'ghost'" in result.stderr
    assert doc(db, Key("user", "ghost")) == {}


def test_reset_asks_on_a_terminal_and_names_the_cli_actor(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _enrolled_with_devices_and_codes(db)
    events: list[dict[str, Any]] = []
    config = MFAConfig(secret_keys=[KEY], store=SQLiteStore(db), on_event=events.append)
    monkeypatch.setattr(sys, "stdin", FakeTerminal("n\n"))
    code, out = run_main("reset", "alice", runtime=Runtime(config))
    assert code == 2
    assert out == "Reset two-step verification of alice? [y/N] "
    assert doc(db, ALICE)["method"] == "totp"
    monkeypatch.setattr(sys, "stdin", FakeTerminal("y\n"))
    code, out = run_main("reset", "alice", runtime=Runtime(config))
    assert code == 0
    assert re.search(r"reset: alice\nenrollment_code: [0-9a-z]{4}(-[0-9a-z]{4}){3}\n$", out)
    assert doc(db, ALICE)["method"] is None
    actor = f"cli:{getpass.getuser()}"
    assert [(e["event"], e["user"], e["actor"], e["target"]) for e in events] == [
        ("enroll_code_issued", "alice", actor, "alice"),
        ("mfa_reset", "alice", actor, "alice"),
    ]


def test_unlock_lifts_a_lockout_and_says_when_there_was_none(url: str, db: Path) -> None:
    store = SQLiteStore(db)
    store.put(Key("throttle", "alice"), {"failures": 20, "locked_until": 9e9})
    store.close()
    assert as_json(admin("--store", url, "--json", "unlock", "alice")) == {
        "user": "alice",
        "unlocked": True,
    }
    assert doc(db, Key("throttle", "alice")) == {}
    assert as_json(admin("--store", url, "--json", "unlock", "alice"))["unlocked"] is False


def test_list_shows_the_users_seen_with_their_status_and_filters_them(url: str, db: Path) -> None:
    store = SQLiteStore(db)
    store.put(Key("directory", "_", "alice"), {"name": "alice", "seen_at": 1.7e9})
    store.put(Key("directory", "_", "bob"), {"name": "bob", "seen_at": 1.7e9})
    store.put(Key("directory", "_", "svc"), {"name": "svc"})
    store.put(Key("user", "svc"), {"exempt": True})
    store.put(Key("throttle", "bob"), {"failures": 20})
    store.close()
    everyone = as_json(admin("--store", url, "--json", "list"))
    assert everyone["total"] == 3
    assert [u["user"] for u in everyone["users"]] == ["alice", "bob", "svc"]
    assert everyone["users"][0]["methods"] == ["totp"]
    assert as_json(admin("--store", url, "--json", "list", "--enrolled"))["total"] == 1
    assert [
        u["user"] for u in as_json(admin("--store", url, "--json", "list", "--exempt"))["users"]
    ] == ["svc"]
    locked = as_json(admin("--store", url, "--json", "list", "--locked"))
    assert [u["user"] for u in locked["users"]] == ["bob"]
    assert as_json(admin("--store", url, "--json", "list", "--not-enrolled"))["total"] == 2
    text = admin("--store", url, "list", "--enrolled")
    assert text.returncode == 0, text.stderr
    assert "  - user=alice, name=alice, login=, last_seen_at=2023-11-14 22:13 UTC" in text.stdout
    assert "methods=totp" in text.stdout
    assert text.stdout.endswith("total: 1\n")
    both = admin("--store", url, "list", "--enrolled", "--not-enrolled")
    assert both.returncode == 2  # one or the other


def test_events_shows_a_users_recent_events_newest_first(db: Path, capsys: Any) -> None:
    clock = FixedClock()
    runtime = Runtime(MFAConfig(secret_keys=[KEY], store=SQLiteStore(db), clock=clock))
    assert run_main("logout", "alice", runtime=runtime)[0] == 0
    clock.advance(60)
    assert run_main("exempt", "alice", runtime=runtime)[0] == 0
    code, out = run_main("--json", "events", "alice", runtime=runtime)
    assert code == 0
    shown = json.loads(out)
    assert shown["user"] == "alice"
    assert [e["event"] for e in shown["events"]] == ["exemption_changed", "forced_logout"]
    actor = f"cli:{getpass.getuser()}"
    assert {(e["actor"], e["target"]) for e in shown["events"]} == {(actor, "alice")}
    assert shown["events"][0]["at"] == clock()
    code, out = run_main("events", "alice", "--limit", "1", runtime=runtime)
    assert code == 0
    assert out.startswith("user: alice\nevents:\n  - event=exemption_changed, id=")
    assert ", at=2023-11-14 22:14 UTC, " in out
    assert "forced_logout" not in out
    assert run_main("events", "alice", "--limit", "0", runtime=runtime)[0] == 2
    assert "--limit must be 1 or more" in capsys.readouterr().err

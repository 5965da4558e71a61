"""`mfa-admin`: operate 2FA from a shell, against the store the app uses.

Point it at the app's configuration (`--config package.module:CONFIG`, an `MFAConfig` or a
function returning one; or `MFA_CONFIG`) or just at the store (`--store URL` or
`MFA_STORE_URL`). Commands that make something the app must verify (the enrollment code of a
reset) need the app's `secret_keys` as well: `--config`, or `MFA_SECRET_KEYS` beside
`--store`. Changes reach every worker on its next request.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any, Protocol, TextIO

from mfa_middleware.admin import Admin, AmbiguousName
from mfa_middleware.config import MFAConfig
from mfa_middleware.core.ops import UserFilter
from mfa_middleware.errors import ConfigError, MFAError
from mfa_middleware.runtime import Runtime
from mfa_middleware.stores import store_from_url

UserResolver = Callable[[str], str | None]
"""Maps a name typed by an operator to the user id the middleware uses (None: no such user)."""
EmailLookup = Callable[[str], str | None]
"""Maps that name to the user's address of record in the app (for the enrollment code)."""


class CommandError(Exception):
    """A clear message for the operator; the command exits with status 2."""


def build_parser(prog: str = "mfa-admin") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Operate mfa_middleware: inspect and change users' two-factor state.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('mfa_middleware')}"
    )
    parser.add_argument(
        "--config",
        help="import path of an MFAConfig (or a function returning "
        "one), e.g. myapp.settings:MFA_CONFIG; default $MFA_CONFIG",
    )
    parser.add_argument(
        "--store",
        help="store URL when there is no config, e.g. "
        "sqlite:///var/lib/app/mfa.sqlite3 or redis://host/0; "
        "default $MFA_STORE_URL",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    json_too = argparse.ArgumentParser(add_help=False)  # --json after the command works too
    json_too.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[json_too])

    status = command("status", help="show a user's 2FA status")
    status.add_argument("user")
    events = command("events", help="show a user's recent 2FA events, newest first")
    events.add_argument("user")
    events.add_argument("--limit", type=int, default=None, help="at most this many")
    listing = command("list", help="list the users the middleware has seen, with their 2FA status")
    enrolled = listing.add_mutually_exclusive_group()
    enrolled.add_argument(
        "--enrolled", action="store_true", default=None, help="only users with 2FA set up"
    )
    enrolled.add_argument(
        "--not-enrolled",
        dest="enrolled",
        action="store_false",
        help="only users without 2FA set up",
    )
    listing.add_argument(
        "--method",
        choices=["totp", "sms", "email", "webauthn"],
        help="only users with this kind of authenticator",
    )
    listing.add_argument("--exempt", action="store_true", help="only exempt users")
    listing.add_argument("--locked", action="store_true", help="only users locked out now")
    listing.add_argument("--search", default="", help="a part of a user id, name or login name")
    logout = command("logout", help="end a user's sessions (or everyone's)")
    target = logout.add_mutually_exclusive_group(required=True)
    target.add_argument("user", nargs="?")
    target.add_argument("--all", action="store_true", help="clear every user's sessions")
    logout.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    logout.add_argument(
        "--devices",
        action="store_true",
        help="also revoke trusted devices (they must verify again)",
    )
    for name, text in (
        ("exempt", "exempt a user's API calls (a service account's token) from 2FA"),
        ("unexempt", "remove a user's exemption"),
        ("require", "require 2FA for a user even in optional mode"),
        ("unrequire", "remove a user's requirement flag"),
    ):
        flag = command(name, help=text)
        flag.add_argument("user")
        if name in ("exempt", "require"):
            flag.add_argument(
                "--new",
                action="store_true",
                help="the user has no 2FA record yet (e.g. a new service account): create one",
            )
        if name == "exempt":
            flag.add_argument(
                "--browser",
                action="store_true",
                help="also exempt the user's browser logins (by default an exemption covers"
                " only API authentication, so the account's password alone never opens a"
                " browser session)",
            )
    unlock = command("unlock", help="lift a user's lockout after wrong codes")
    unlock.add_argument("user")
    reset = command(
        "reset",
        help="reset a user's 2FA: they enroll again, after entering a one-time enrollment code"
        " that is emailed to them or, when it cannot be, printed for you to hand over",
    )
    reset.add_argument("user")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument("--email", help="the user's address of record, for the enrollment code")
    devices = command("devices", help="list a user's devices")
    devices.add_argument("user")
    revoke = command("revoke-device", help="delete one of a user's devices")
    revoke.add_argument("user")
    revoke.add_argument("device", help="the device id shown by `devices`")
    remove = command(
        "remove-authenticator",
        help="remove one of a user's ways to sign in (a lost key or phone); never the last one",
    )
    remove.add_argument("user")
    remove.add_argument("authenticator", help="the authenticator id shown by `status`")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    mode = command("mode", help="show the global mode, or set it")
    mode.add_argument(
        "mode", nargs="?", choices=["off", "optional", "required"], help="the new mode"
    )
    mode.add_argument("--yes", action="store_true", help="do not ask for confirmation (off)")
    lifetime = command("session-lifetime", help="set the login session lifetime")
    lifetime.add_argument("duration", help="e.g. 90d, 12h, 30m")
    return parser


NEEDS_KEYS = {"reset": "the enrollment code a reset issues is checked with them"}
KEYS_VARIABLE = "MFA_SECRET_KEYS"


def keys_from_environment() -> list[str] | None:
    """The app's `secret_keys` from MFA_SECRET_KEYS: oldest first, separated by spaces or
    commas (the keys themselves contain neither)."""
    raw = os.environ.get(KEYS_VARIABLE, "")
    keys = [k for k in raw.replace(",", " ").split() if k]
    return keys or None


def load_config(config_path: str | None, store_url: str | None) -> tuple[MFAConfig, bool]:
    """The app's configuration, and whether its keys are the app's own (a store URL alone
    gives the store, not the keys)."""
    config_path = config_path or os.environ.get("MFA_CONFIG")
    store_url = store_url or os.environ.get("MFA_STORE_URL")
    if config_path:
        module_name, _, attr = config_path.partition(":")
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as uvicorn does: the app's package is found here
        try:
            target: Any = getattr(importlib.import_module(module_name), attr or "MFA_CONFIG")
        except (ImportError, AttributeError) as exc:
            raise CommandError(f"cannot load the config {config_path!r}: {exc}") from exc
        config = target() if callable(target) else target
        if not isinstance(config, MFAConfig):
            raise CommandError(f"{config_path!r} is not an MFAConfig")
        return config, True
    if store_url:
        missing = missing_sqlite_file(store_url)
        if missing is not None:
            raise CommandError(
                f"no SQLite database at {missing}: check the path in {store_url!r} (mfa-admin"
                " opens the app's database and never creates one; an absolute path takes"
                " three slashes, sqlite:///var/lib/app/mfa.sqlite3)"
            )
        try:
            store = store_from_url(store_url)
        except (ValueError, MFAError) as exc:
            raise CommandError(str(exc)) from exc
        keys = keys_from_environment()
        if keys is not None:
            try:
                return MFAConfig(secret_keys=keys, store=store), True
            except ConfigError as exc:
                raise CommandError(f"{KEYS_VARIABLE}: {exc.problem}") from exc
        # Most operations only change records and sign nothing: a throwaway key serves them;
        # the commands in NEEDS_KEYS refuse to run with it. The mode default is the package's.
        return MFAConfig(secret_keys=[secrets.token_urlsafe(48)], store=store), False
    raise CommandError(
        "say where the 2FA state is: --config, --store, $MFA_CONFIG or $MFA_STORE_URL"
    )


def missing_sqlite_file(url: str) -> str | None:
    """The path a `sqlite:` store URL names when no database is there (a mistyped path would
    otherwise open a new, empty database and every user would look unknown); else None."""
    if not url.startswith("sqlite:"):
        return None
    path = url.removeprefix("sqlite:")
    if path.startswith("//"):
        path = path[2:]
    if not path or path == ":memory:" or os.path.isfile(path):
        return None
    return os.path.abspath(path)


class Writer(Protocol):
    """Where output goes: a text stream (sys.stdout, a Django command's OutputWrapper)."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


def _confirm(question: str, assume_yes: bool, stdin: TextIO, out: Writer) -> None:
    if assume_yes:
        return
    if not stdin.isatty():
        raise CommandError(f"{question} Refusing without --yes (no terminal to ask).")
    print(f"{question} [y/N] ", end="", flush=True, file=out)
    if stdin.readline().strip().lower() not in ("y", "yes"):
        raise CommandError("cancelled")


def run(
    args: argparse.Namespace,
    admin: Admin,
    resolve: UserResolver,
    out: Writer,
    stdin: TextIO,
    email_of: EmailLookup | None = None,
) -> dict[str, Any]:
    """Carry out one command; returns what was done, for text or JSON output."""

    def user_id() -> str:
        try:
            resolved = resolve(args.user)
        except AmbiguousName as exc:
            raise CommandError(str(exc)) from exc
        if resolved is None and getattr(args, "new", False):
            return str(args.user)
        if resolved is not None and resolved != args.user:
            admin.known_as(resolved, args.user)
        if resolved is None:
            hint = (
                " (no 2FA record yet; pass --new to act on it anyway)"
                if hasattr(args, "new")
                else ""
            )
            raise CommandError(f"unknown user {args.user!r}{hint}")
        return resolved

    command = args.command
    if command == "status":
        return admin.status(user_id()).to_dict()
    if command == "events":
        if args.limit is not None and args.limit < 1:
            raise CommandError("--limit must be 1 or more")
        uid = user_id()
        return {"user": uid, "events": admin.events(uid, args.limit)}
    if command == "list":
        wanted = UserFilter(
            search=args.search,
            enrolled=args.enrolled,
            method=args.method,
            exempt=True if args.exempt else None,
            locked=True if args.locked else None,
        )
        found = admin.list_users(wanted)
        return {"users": [row.to_dict() for row in found.rows], "total": found.total}
    if command == "logout" and args.all:
        _confirm("Log out every user of every session?", args.yes, stdin, out)
        admin.logout_all(revoke_devices=args.devices)
        return {"logged_out": "all", "devices_revoked": args.devices}
    if command == "logout":
        uid = user_id()
        admin.logout(uid, revoke_devices=args.devices)
        return {"logged_out": uid, "devices_revoked": args.devices}
    if command == "unlock":
        uid = user_id()
        return {"user": uid, "unlocked": admin.unlock(uid)}
    if command in ("exempt", "unexempt"):
        uid = user_id()
        if command == "unexempt":
            admin.exempt(uid, False)
            return {"user": uid, "exempt": False}
        admin.exempt(uid, True, browser=args.browser)
        return {"user": uid, "exempt": True, "browser": args.browser}
    if command in ("require", "unrequire"):
        uid = user_id()
        admin.require(uid, command == "require")
        return {"user": uid, "required": command == "require"}
    if command == "reset":
        uid = user_id()
        _confirm(f"Reset two-step verification of {args.user}?", args.yes, stdin, out)
        email = args.email or (email_of(args.user) if email_of is not None else None)
        done = admin.reset(uid, email=email)
        result: dict[str, Any] = {"reset": uid}
        if done.code_sent:
            result["enrollment_code_emailed_to"] = done.emailed_to
        elif done.emailed_to is not None:
            result["user_told_at"] = done.emailed_to
        if done.handover is not None:  # nobody else has it: the operator hands it over
            result["enrollment_code"] = done.handover
        return result
    if command == "devices":
        uid = user_id()
        return {"user": uid, "devices": admin.devices(uid)}
    if command == "revoke-device":
        uid = user_id()
        if not admin.revoke_device(uid, args.device):
            raise CommandError(f"{args.user!r} has no device {args.device!r}")
        return {"user": uid, "revoked": args.device}
    if command == "remove-authenticator":
        uid = user_id()
        question = f"Remove authenticator {args.authenticator!r} of {args.user}?"
        _confirm(question, args.yes, stdin, out)
        refused = admin.remove_authenticator(uid, args.authenticator)
        if refused == "last_one":
            raise CommandError(
                f"{args.authenticator!r} is the only way {args.user!r} signs in: use `reset`"
                " instead (they enroll again)"
            )
        if refused:
            raise CommandError(f"{args.user!r} has no authenticator {args.authenticator!r}")
        return {"user": uid, "removed": args.authenticator}
    if command == "mode" and args.mode is None:
        return {"mode": admin.mode()}
    if command == "mode":
        if args.mode == "off" and admin.mode() != "off":
            _confirm(
                "Turn two-step verification off for everyone? Nobody is asked for a second"
                " step until it is turned on again, and then everyone sets it up again.",
                args.yes,
                stdin,
                out,
            )
        admin.set_mode(args.mode)
        return {"mode": args.mode}
    if command == "session-lifetime":
        try:
            seconds = admin.set_session_lifetime(args.duration)
        except ConfigError as exc:
            raise CommandError(f"bad duration {args.duration!r}: use e.g. 90d, 12h, 30m") from exc
        return {"session_lifetime_seconds": seconds}
    raise CommandError(f"unknown command {command!r}")  # pragma: no cover


TIME_FIELDS = frozenset(
    {"created_at", "last_used", "last_used_at", "at", "seen_at", "last_seen_at"}
)


def _shown(key: str, value: Any) -> Any:
    """A value as a person reads it: times (seconds since the epoch) in UTC to the minute,
    lists as words separated by commas."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    if key in TIME_FIELDS and isinstance(value, int | float) and not isinstance(value, bool):
        if not value:
            return "never"
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(value))
    return value


def _print(result: dict[str, Any], as_json: bool, out: Writer) -> None:
    if as_json:
        out.write(json.dumps(result, sort_keys=True) + "\n")
        return
    for key, value in result.items():
        if isinstance(value, list):
            out.write(f"{key}:{'' if value else ' none'}\n")
            for item in value:
                fields = item.items() if isinstance(item, dict) else [("", item)]
                out.write(
                    "  - " + ", ".join(f"{k}={_shown(k, v)}" if k else str(v) for k, v in fields)
                )
                out.write("\n")
        else:
            out.write(f"{key}: {_shown(key, value)}\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    runtime: Runtime | None = None,
    resolve: UserResolver | None = None,
    email_of: EmailLookup | None = None,
    prog: str = "mfa-admin",
    out: Writer | None = None,
) -> int:
    out = out or sys.stdout
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(out)
        return 0
    try:
        if runtime is None:
            config, keys_known = load_config(args.config, args.store)
            if not keys_known and args.command in NEEDS_KEYS:
                raise CommandError(
                    f"{args.command} needs the app's secret keys ({NEEDS_KEYS[args.command]}):"
                    f" pass --config package.module:MFA_CONFIG (the app's MFAConfig), or set"
                    f" {KEYS_VARIABLE} to the app's secret_keys, oldest first, with --store"
                )
            runtime = Runtime(config)
        admin = Admin(runtime, actor=f"cli:{getpass.getuser()}")
        if resolve is None:
            resolve = admin.resolve
        result = run(args, admin, resolve, out, sys.stdin, email_of)
    except CommandError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except MFAError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    _print(result, args.json, out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

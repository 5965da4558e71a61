"""`manage.py mfa ...`: the `mfa-admin` commands against the project's MFA store, with users
named by their Django username."""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mfa_middleware.cli import main
from mfa_middleware.django.settings import runtime


def _user(username: str) -> Any:
    model = get_user_model()
    return model._default_manager.filter(**{str(model.USERNAME_FIELD): username}).first()


def user_id_for(username: str) -> str | None:
    """The id the middleware uses for a Django user (the primary key), or None."""
    user = _user(username)
    return None if user is None else str(user.pk)


def email_for(username: str) -> str | None:
    """The Django user's email address (where a reset's enrollment code goes), or None."""
    user = _user(username)
    if user is None:
        return None
    return getattr(user, str(user.get_email_field_name()), None) or None


class Command(BaseCommand):
    help = "Operate two-factor authentication: the same commands as mfa-admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args", nargs=argparse.REMAINDER, help="an mfa-admin command, e.g. logout alice"
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # Our own parser takes the whole command line (options before the command included).
        prog = f"{os.path.basename(argv[0])} {argv[1]}"
        raise SystemExit(self._run(argv[2:], prog))

    def handle(self, *args: Any, **options: Any) -> None:
        argv = list(args)
        if argv[:1] == ["--"]:  # call_command("mfa", "--", ...): the separator is not ours
            argv = argv[1:]
        code = self._run(argv, "manage.py mfa")
        if code:
            raise CommandError(f"mfa {' '.join(args)} failed (exit {code})")

    def _run(self, argv: list[str], prog: str) -> int:
        return main(
            argv,
            runtime=runtime(),
            resolve=user_id_for,
            email_of=email_for,
            prog=prog,
            out=self.stdout,
        )


__all__ = ["Command"]

"""`mfa-admin`: operate 2FA from a shell against the configured store.

The operational commands (status, reset, logout, exempt, mode, ...) are added by the admin
issue; this entry point, its `--help` and `--version` are stable now.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfa-admin",
        description="Operate mfa_middleware: inspect and change users' two-factor state.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('mfa_middleware')}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

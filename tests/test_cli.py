"""The `mfa-admin` console script is installed and answers --help and --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mfa_middleware import cli

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

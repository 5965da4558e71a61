"""The translation template lists every string the pages show (templates and N_() in Python):
a string added without `make messages` fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POT = ROOT / "src" / "mfa_middleware" / "locale" / "mfa_middleware.pot"


def test_committed_catalog_template_is_complete(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "NP_:1,2",
            "--no-location",
            "--sort-output",
            "--omit-header",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert fresh.read_text() == POT.read_text(), "run `make messages` and commit the .pot"
    assert 'msgid "Enter a valid email address."' in POT.read_text()
    assert 'msgid "Trust this device?"' in POT.read_text()

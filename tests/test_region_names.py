"""The phone form's country names (src/mfa_middleware/web/region_names.py) are CLDR's, and
cover every region phonenumbers parses: after upgrading either, run scripts/region_names.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mfa_middleware.web.region_names import NAMES

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "region_names.py"


def test_the_committed_table_is_what_the_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("region_names_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.names() == NAMES, "run python scripts/region_names.py and commit the table"
    assert script.TARGET.read_text(encoding="utf-8") == script.render(NAMES)
    assert NAMES["GB"] == "United Kingdom"

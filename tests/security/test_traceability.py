"""Every item of the security checklist is proved by a test, or docs/security.md says why it
does not apply; the matrix there is current; markers name only real items."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.checklist import ITEMS
from tests.security.traceability import DOC, markers, not_applicable, rendered

SHARED = Path(__file__).resolve().parents[3] / "shared" / "SECURITY_CHECKLIST.md"


def test_every_item_is_tested_or_explained() -> None:
    proving = markers()
    reasons = not_applicable(DOC.read_text(encoding="utf-8"))
    missing = [item for item in ITEMS if not proving.get(item) and item not in reasons]
    assert missing == [], f"checklist items with no test and no reason: {missing}"


def test_markers_name_only_known_items() -> None:
    unknown = sorted(set(markers()) - set(ITEMS))
    assert unknown == [], f"checklist markers with no such item: {unknown}"


def test_reasons_are_only_given_for_untested_items() -> None:
    proving = markers()
    reasons = not_applicable(DOC.read_text(encoding="utf-8"))
    both = [item for item in reasons if proving.get(item)]
    assert both == [], f"items both tested and said not to apply: {both}"


def test_the_matrix_in_docs_security_md_is_current() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert rendered(current) == current, "run `make security-matrix`"


def test_the_item_list_matches_the_shared_checklist() -> None:
    if not SHARED.exists():
        pytest.skip("the shared checklist is not beside this checkout (a plain clone)")
    text = SHARED.read_text(encoding="utf-8")
    for item in ITEMS:
        assert f"**{item}**" in text, item
    assert text.count("- Requirement:") == len(ITEMS)

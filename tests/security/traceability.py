"""Which tests prove which checklist items: read from the test files' source (no pytest
collection, so it is exact whatever subset of the suite runs), and the matrix in
docs/security.md written from it.

A test names items with `@pytest.mark.checklist("ID", ...)` on the function (or its class),
or a module-level `pytestmark` that includes `pytest.mark.checklist(...)`. An item that does
not apply is listed in docs/security.md under "Items that do not apply", as
`- **ID**: the reason`.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.security.checklist import ITEMS

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
DOC = ROOT / "docs" / "security.md"
START = "<!-- matrix:start (written by `make security-matrix`; do not edit by hand) -->"
END = "<!-- matrix:end -->"
NOT_APPLICABLE = re.compile(r"^- \*\*([A-Z]+-\d+)\*\*: (.+)$", re.M)
SECTIONS = {
    "TOTP": "TOTP verification",
    "OOB": "Codes by SMS and email",
    "RL": "Rate limits, lockout, concurrency",
    "RC": "Recovery codes",
    "ENR": "Enrollment and factor management",
    "SES": "Sessions, lifetime, logout",
    "TD": "Trusted devices",
    "RST": "Reset and recovery",
    "EX": "Exemptions and entry points",
    "UI": "Pages and flow integrity",
    "LOG": "Logging",
    "NOT": "Notifications",
    "GEN": "Failing safe",
}


def _checklist_ids(node: ast.expr) -> list[str]:
    """The ids of every `pytest.mark.checklist(...)` call in a decorator or pytestmark."""
    found: list[str] = []
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "checklist"
        ):
            found += [a.value for a in call.args if isinstance(a, ast.Constant)]
    return found


def _tests_in(
    body: Iterable[ast.stmt], prefix: str, inherited: list[str]
) -> Iterator[tuple[str, list[str]]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            ids = inherited + [i for d in node.decorator_list for i in _checklist_ids(d)]
            yield f"{prefix}{node.name}", ids
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids = inherited + [i for d in node.decorator_list for i in _checklist_ids(d)]
            yield from _tests_in(node.body, f"{prefix}{node.name}::", ids)


def markers(tests: Path = TESTS) -> dict[str, list[str]]:
    """Item id -> the tests (`path::name`) that name it, sorted."""
    proving: dict[str, set[str]] = defaultdict(set)
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        module_ids: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
            ):
                module_ids += _checklist_ids(node.value)
        relative = path.relative_to(ROOT).as_posix()
        for name, ids in _tests_in(tree.body, f"{relative}::", module_ids):
            for item in ids:
                proving[item].add(name)
    return {item: sorted(names) for item, names in proving.items()}


def not_applicable(doc: str) -> dict[str, str]:
    """Item id -> why it does not apply, from docs/security.md."""
    section = doc.split("## Items that do not apply", 1)
    if len(section) < 2:
        return {}
    body = section[1].split("\n## ", 1)[0]
    return {item: reason.strip() for item, reason in NOT_APPLICABLE.findall(body)}


def matrix(proving: dict[str, list[str]], reasons: dict[str, str]) -> str:
    """The matrix as Markdown: one table per section, a row per item."""
    lines = [START, ""]
    tested = sum(1 for item in ITEMS if proving.get(item))
    lines.append(
        f"{tested} of {len(ITEMS)} items are proved by tests; "
        f"{sum(1 for i in ITEMS if not proving.get(i) and i in reasons)} do not apply (see "
        "below); every test named here fails when what it proves is broken."
    )
    current = ""
    for item, requirement in ITEMS.items():
        prefix = item.split("-")[0]
        if prefix != current:
            current = prefix
            lines += ["", f"### {SECTIONS.get(prefix, prefix)}", ""]
            lines += ["| Item | Requirement | Status | Tests |", "| --- | --- | --- | --- |"]
        names = proving.get(item, [])
        if names:
            status = "tested"
            cell = "<br>".join(f"`{n}`" for n in names)
        elif item in reasons:
            status, cell = "does not apply", "see below"
        else:
            status, cell = "**missing**", ""
        text = requirement.replace("|", "\\|")
        lines.append(f"| {item} | {text} | {status} | {cell} |")
    lines += ["", END]
    return "\n".join(lines)


def rendered(doc: str) -> str:
    """docs/security.md with its matrix written from the current tests."""
    before, _, rest = doc.partition(START)
    _, _, after = rest.partition(END)
    return before + matrix(markers(), not_applicable(doc)) + after

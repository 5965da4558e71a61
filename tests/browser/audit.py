"""Accessibility and layout checks of a page as Chromium shows it.

axe-core (pinned in tests/browser/axe/package-lock.json, installed into its node_modules by
scripts/system-deps.sh) is evaluated in the page through the DevTools protocol, which the
pages' strict Content-Security-Policy (script-src 'none') does not apply to, so the pages are
checked exactly as served. WCAG 2.0/2.1 A and AA rules are run, and the landmark rules below;
any violation fails.
The same visit checks that the page does not scroll sideways at each width.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# and three best practices screen reader users rely on: all content inside landmarks (the
# "Signed in as" footer included), one main landmark, one top-level heading
LANDMARKS = {"region": True, "landmark-one-main": True, "page-has-heading-one": True}
RUN_AXE = """([tags, rules]) => axe.run(document, {
    runOnly: {type: "tag", values: tags},
    rules: Object.fromEntries(Object.keys(rules).map(id => [id, {enabled: true}])),
    resultTypes: ["violations"]
}).then(result => result.violations.map(v =>
    `${v.id} (${v.impact}): ${v.help}: ` + v.nodes.map(n => n.target.join(" ")).join(", ")))"""


def missing_axe() -> list[str]:
    if AXE_JS.is_file():
        return []
    return [f"axe-core at {AXE_JS} (bash scripts/system-deps.sh: npm ci in tests/browser/axe)"]


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[str]:
    """Every WCAG 2.1 A/AA violation axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source() + "\n;undefined")  # a script, not a function
    return list(page.evaluate(RUN_AXE, [WCAG_AA, LANDMARKS]))


def sideways_scroll(page: Page) -> int | None:
    """How wide the page is when it is wider than the window (it scrolls sideways), or None."""
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    window = int(page.evaluate("document.documentElement.clientWidth"))
    return width if width > window else None


@dataclass
class Audit:
    """Findings per page state and width, collected through a whole journey and reported
    together at its end, so one test shows every page that needs work."""

    findings: dict[str, list[str]] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)

    def check(self, page: Page, state: str, *, axe: bool = True) -> None:
        self.states.append(state)
        found = axe_violations(page) if axe else []
        if (wide := sideways_scroll(page)) is not None:
            found.append(f"scrolls sideways: {wide}px wide")
        if found:
            self.findings[f"{state} ({page.url})"] = found

    def assert_clean(self) -> None:
        report = "\n".join(
            f"{state}:\n  " + "\n  ".join(items) for state, items in self.findings.items()
        )
        assert not self.findings, f"accessibility or layout problems:\n{report}"

"""`RuleSet.rule_by_path`: what the request line (and the app's auth method) settles without
the principal, and what it leaves to `rule_for` (issue 22: the token path skips the principal
where a bypass rule on `auth_method` decides; issue 18: a memo hit asks step-up rules)."""

from __future__ import annotations

import dataclasses

import pytest

from mfa_middleware.core.principal import Principal
from mfa_middleware.core.rules import UNKNOWN, Rule, RuleSet

RULES = [
    {"action": "bypass", "paths": ["/health"]},
    {"action": "bypass", "attributes": {"auth_method": "token"}, "paths": ["/api/**"]},
    {"action": "deny", "groups": ["contractors"], "paths": ["/admin/**"]},
    {"action": "two_factor", "paths": ["/billing/**"], "max_age": 300.0},
]


@pytest.mark.parametrize(
    ("path", "auth_method", "expected"),
    [
        ("/health", None, "bypass"),
        ("/api/x", "token", "bypass"),
        ("/api/x", "session", None),  # the token rule does not match: nothing else does
        ("/api/x", None, UNKNOWN),  # not told how the app authenticated: only rule_for knows
        ("/admin/x", "session", UNKNOWN),  # groups: only the principal can tell
        ("/billing/x", None, "two_factor"),
        ("/other", None, None),
    ],
)
def test_what_the_request_line_settles(
    path: str, auth_method: str | None, expected: object
) -> None:
    rules = RuleSet.build(RULES, None)
    found = rules.rule_by_path(path, "GET", auth_method)
    if expected is UNKNOWN or expected is None:
        assert found is expected
    else:
        assert isinstance(found, Rule)
        assert found.action == expected


@pytest.mark.parametrize("path", ["/health", "/api/x", "/billing/x", "/other", "/admin/x"])
@pytest.mark.parametrize("auth_method", ["token", "session"])
def test_it_never_disagrees_with_rule_for(path: str, auth_method: str) -> None:
    rules = RuleSet.build(RULES, None)
    settled = rules.rule_by_path(path, "GET", auth_method)
    for groups in (frozenset(), frozenset({"contractors"})):
        principal = Principal("u", groups=groups, auth_method=auth_method)
        if settled is not UNKNOWN:
            assert settled is rules.rule_for(path, "GET", principal)


@pytest.mark.parametrize("path", ["/health", "/api/x", "/billing/x", "/other", "/admin/x"])
def test_a_repeated_request_line_gets_the_same_answer_from_the_cache(path: str) -> None:
    """The answers are kept by request line (a verified session's next request asks again):
    the kept answer is the one matching gives, None and UNKNOWN included, and a request line
    that differs only in its method or auth method is not served another's answer."""
    rules = RuleSet.build(RULES, None)
    first = rules.rule_by_path(path, "GET", "token")
    assert (path, "GET", "token") in rules._by_path
    assert rules.rule_by_path(path, "GET", "token") is first
    for method, auth_method in (("GET", "session"), ("POST", "token"), ("GET", None)):
        matched = rules._rule_by_path(path, method, auth_method)
        assert rules.rule_by_path(path, method, auth_method) is matched
        assert rules.rule_by_path(path, method, auth_method) is matched  # kept, the same


def test_long_paths_are_matched_but_not_kept() -> None:
    rules = RuleSet.build(RULES, None)
    path = "/billing/" + "x" * 400
    found = rules.rule_by_path(path, "GET")
    assert isinstance(found, Rule)
    assert found.action == "two_factor"
    assert len(rules._by_path) == 0


def test_a_rule_set_made_from_another_keeps_no_answer_of_it() -> None:
    rules = RuleSet.build(RULES, None)
    assert rules.rule_by_path("/other", "GET") is None
    deny_all = dataclasses.replace(rules, default_action="deny", default_rule=Rule("deny"))
    found = deny_all.rule_by_path("/other", "GET")
    assert isinstance(found, Rule)
    assert found.action == "deny"


def test_what_an_attacker_sends_cannot_grow_the_cache() -> None:
    """A long method counts toward the request line's length as a long path does (h11 takes
    methods of kilobytes), and with no rules at all nothing is kept."""
    rules = RuleSet.build(RULES, None)
    assert rules.rule_by_path("/other", "X" * 300) is None
    assert len(rules._by_path) == 0
    none = RuleSet.build([], None)
    for n in range(50):
        assert none.rule_by_path(f"/p{n}", "GET", "token") is None
    assert len(none._by_path) == 0

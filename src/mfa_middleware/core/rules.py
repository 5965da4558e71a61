"""Access rules: an ordered list, first match wins (like Authelia's `access_control`).

A rule matches when every criterion it sets matches: path patterns, methods (HEAD wherever
GET is listed), users (the stable user id, or a login name the app vouches for:
`Principal.login_name`, never a display name a user picks), groups, principal attributes
(including `auth_method`), client networks. Its action is `bypass` (no 2FA on this request, and
no store access, so it keeps working while the store is down), `two_factor` (2FA required here
even in optional mode) or `deny` (403). A `two_factor` rule may also ask for a fresh factor:
`max_age` (seconds since the last one) and `device_ok` (False: a session a trusted device let
in must pass a real factor here); a session that does not meet them is stepped up.

A client whose address is unknown (see `core.addresses`) never satisfies the network condition
of a `bypass` rule and always satisfies that of a `deny` or `two_factor` rule: doubt tightens.

Paths are matched on the normalised path: percent-decoded, dot segments resolved, repeated
slashes folded. A rule that *loosens* (bypass) matches only a path that is already in that
canonical form, because a router may read `/admin/../public` as a page under `/admin`; rules that
*tighten* (deny, two_factor) match either form. The query string never matters, and no header
a client can set (X-Original-URL, X-Forwarded-For from an untrusted peer) is ever consulted.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from mfa_middleware.core.addresses import Address, ClientAddresses, Network
from mfa_middleware.core.bounded import Bounded
from mfa_middleware.core.principal import Principal

ACTIONS = ("bypass", "two_factor", "deny")


def normalise_path(path: str) -> str:
    """The path a careful router would serve: decoded, `.`/`..` resolved, `//` folded."""
    if path.startswith("/") and not any(t in path for t in ("%", "//", "/.", "\\")):
        return path  # already canonical: the common case costs four substring checks
    decoded = unquote(path)
    decoded = re.sub(r"/{2,}", "/", decoded.replace("\\", "/"))
    if not decoded.startswith("/"):
        decoded = "/" + decoded
    resolved = posixpath.normpath(decoded)
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    if decoded.endswith("/") and resolved != "/":
        resolved += "/"
    return resolved


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches within one segment, `**` across segments; `re:` prefixes a raw regex."""
    if pattern.startswith("re:"):
        return re.compile(pattern[3:])
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Rule:
    """One access rule. Empty criteria match anything."""

    action: str
    paths: Sequence[str] = ()
    methods: Sequence[str] = ()
    users: Sequence[str] = ()
    groups: Sequence[str] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    networks: Sequence[str] = ()
    max_age: float | None = None  # two_factor: the last factor at most this many seconds ago
    device_ok: bool = True  # two_factor: False refuses a session a trusted device let in
    _path_res: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _nets: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    asks_who: bool = field(init=False, repr=False, compare=False)  # the user or the client
    by_auth_method: bool = field(init=False, repr=False, compare=False)  # of the user, only that

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"rule action {self.action!r}: use one of {', '.join(ACTIONS)}")
        for name in ("paths", "methods", "users", "groups", "networks"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"rule {name} must be a list, not a single string")
        if self.action != "two_factor" and (self.max_age is not None or not self.device_ok):
            raise ValueError("max_age and device_ok belong to a two_factor rule")
        if self.max_age is not None and not (
            isinstance(self.max_age, int | float) and 0 < self.max_age < float("inf")
        ):
            raise ValueError(f"rule max_age {self.max_age!r}: a duration longer than zero")
        if not isinstance(self.device_ok, bool):
            raise ValueError("rule device_ok must be True or False")
        object.__setattr__(self, "_path_res", tuple(_glob_regex(p) for p in self.paths))
        object.__setattr__(
            self, "_nets", tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)
        )
        methods = tuple(m.upper() for m in self.methods)
        if "GET" in methods and "HEAD" not in methods:
            methods += ("HEAD",)  # a HEAD runs the GET handler: it must meet the same rule
        object.__setattr__(self, "methods", methods)
        who = self.users or self.groups or self.attributes or self.networks
        object.__setattr__(self, "asks_who", bool(who))
        only_method = not (self.users or self.groups or self.networks) and set(self.attributes) == {
            "auth_method"
        }
        object.__setattr__(self, "by_auth_method", only_method)

    @property
    def wants_fresh(self) -> bool:
        """A fresh factor is asked here (`max_age`, or no trusted device)."""
        return self.max_age is not None or not self.device_ok

    def _path_matches(self, raw: str, canonical: str) -> bool:
        patterns = self._path_res
        if not patterns:
            return True
        if self.action == "bypass":
            if raw != canonical or ";" in raw:
                return False
            return any(p.match(canonical) for p in patterns)
        for pattern in patterns:  # plain loops: this runs on verified requests (web.memo)
            if pattern.match(raw) or (canonical != raw and pattern.match(canonical)):
                return True
        return False

    def matches(
        self,
        raw_path: str,
        canonical: str,
        method: str,
        principal: Principal,
        client: Address | None,
    ) -> bool:
        """`client` None: the address is unknown (see the module docstring)."""
        if self.methods and method not in self.methods:
            return False
        if self.users and not (
            principal.id in self.users
            or (principal.login_name is not None and principal.login_name in self.users)
        ):
            return False
        if self.groups and not principal.groups.intersection(self.groups):
            return False
        for key, expected in self.attributes.items():
            actual = (
                principal.auth_method if key == "auth_method" else principal.attributes.get(key)
            )
            if actual != expected:
                return False
        if self._nets:
            if client is None:
                if self.action == "bypass":
                    return False
            elif not any(client in net for net in self._nets):
                return False
        return self._path_matches(raw_path, canonical)


BY_PATH_LIMIT = 2048  # request lines kept per generation of `RuleSet._by_path`
BY_PATH_LONGEST = 256  # longer request lines (path, method, auth method) are never kept


class Unknown:
    """The rule depends on who asks (see `RuleSet.rule_by_path`)."""


UNKNOWN = Unknown()


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    default_action: str | None = None  # None: follow the mode
    clients: ClientAddresses = field(default_factory=ClientAddresses)
    uses_networks: bool = False
    may_deny: bool = False  # whether a rule (or the default action) can deny a request
    may_step_up: bool = False  # whether a rule asks for a fresh factor
    default_rule: Rule | None = None
    # `rule_by_path`'s answers by request line: a verified session's next request asks it
    # again with the same path (bounded; long paths are not kept)
    _by_path: Bounded[tuple[str, str, str | None], tuple[Rule | Unknown | None]] = field(
        default_factory=lambda: Bounded(BY_PATH_LIMIT), init=False, compare=False, repr=False
    )  # init=False: a `dataclasses.replace` with other rules starts an empty one

    @classmethod
    def build(
        cls,
        rules: Iterable[Rule | Mapping[str, Any]],
        default_action: str | None,
        trusted_proxies: Iterable[str] = (),
        forwarded_header: str = "x-forwarded-for",
    ) -> RuleSet:
        built = tuple(r if isinstance(r, Rule) else Rule(**r) for r in rules)
        if default_action is not None and default_action not in ACTIONS:
            raise ValueError(f"default action {default_action!r}: use one of {', '.join(ACTIONS)}")
        return cls(
            built,
            default_action,
            ClientAddresses(trusted_proxies, forwarded_header),
            uses_networks=any(rule.networks for rule in built),
            may_deny=default_action == "deny" or any(rule.action == "deny" for rule in built),
            may_step_up=any(rule.wants_fresh for rule in built),
            default_rule=None if default_action is None else Rule(default_action),
        )

    @property
    def uses_groups(self) -> bool:
        return any(rule.groups for rule in self.rules)

    def rule_for(
        self, path: str, method: str, principal: Principal, client: Address | None = None
    ) -> Rule | None:
        """The first matching rule, the default action's, or None (follow the mode).
        `client`: the resolved client address (None: unknown), read only by rules with
        networks."""
        if not self.rules:
            return self.default_rule
        canonical = normalise_path(path)
        for rule in self.rules:
            if rule.matches(path, canonical, method, principal, client):
                return rule
        return self.default_rule

    def rule_by_path(
        self, path: str, method: str, auth_method: str | None = None
    ) -> Rule | Unknown | None:
        """`rule_for` without the caller, where the request line settles it (and, when given,
        how the app authenticated it: `auth_method`, as the principal will say): `UNKNOWN` when
        a rule that looks at more of the user or the client matches (only `rule_for` can
        tell), else the rule."""
        if not self.rules:
            return self.default_rule
        key = (path, method, auth_method)
        known = self._by_path.get(key)
        if known is not None:
            return known[0]
        found = self._rule_by_path(path, method, auth_method)
        if len(path) + len(method) + len(auth_method or "") <= BY_PATH_LONGEST:
            self._by_path[key] = (found,)
        return found

    def _rule_by_path(
        self, path: str, method: str, auth_method: str | None
    ) -> Rule | Unknown | None:
        canonical = normalise_path(path)
        for rule in self.rules:
            if rule.methods and method not in rule.methods:
                continue
            if not rule._path_matches(path, canonical):
                continue
            if not rule.asks_who:
                return rule
            if auth_method is None or not rule.by_auth_method:
                return UNKNOWN
            if rule.attributes["auth_method"] == auth_method:
                return rule
        return self.default_rule

    def action_for(
        self, path: str, method: str, principal: Principal, client: Address | None = None
    ) -> str | None:
        """The action `rule_for` names (None: follow the mode)."""
        rule = self.rule_for(path, method, principal, client)
        return None if rule is None else rule.action

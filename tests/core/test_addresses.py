"""Client addresses as servers and proxies write them (`core.addresses`), and what an unknown
address means to the rules."""

from __future__ import annotations

import ipaddress

import pytest

from mfa_middleware.core.addresses import ClientAddresses, forwarded_for, parse_address
from mfa_middleware.core.principal import Principal
from mfa_middleware.core.rules import RuleSet

OFFICE = "10.0.0.0/8"
LOAD_BALANCER = "10.0.0.5"


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("198.51.100.9", "198.51.100.9"),
        ("198.51.100.9:5555", "198.51.100.9"),
        (" 198.51.100.9 ", "198.51.100.9"),
        ("2001:db8::9", "2001:db8::9"),
        ("[2001:db8::9]", "2001:db8::9"),
        ("[2001:db8::9]:443", "2001:db8::9"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
        ("unknown", None),
        ("_hidden", None),
        ("198.51.100.9:port", None),
        ("[2001:db8::9", None),
        ("[2001:db8::9]x", None),
        ("", None),
    ],
)
def test_addresses_are_read_in_every_form_proxies_write(written: str, address: str | None) -> None:
    parsed = parse_address(written)
    assert (None if parsed is None else str(parsed)) == address


def test_rfc_7239_forwarded_elements() -> None:
    assert forwarded_for(
        'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::17]:4711"'
    ) == [
        "192.0.2.60",
        "[2001:db8::17]:4711",
    ]
    assert forwarded_for("proto=https, For=198.51.100.9") == ["", "198.51.100.9"]
    assert forwarded_for('for="a\\"b"') == ['a"b']
    assert forwarded_for('for="unterminated') is None
    assert forwarded_for("for") is None
    assert forwarded_for("for=1.2.3.4 for=5.6.7.8") is None


@pytest.mark.checklist("EX-02")
@pytest.mark.parametrize(
    ("header", "value", "client"),
    [
        ("x-forwarded-for", "198.51.100.9:5555", "198.51.100.9"),
        ("x-forwarded-for", "[2001:db8::9]:443", "2001:db8::9"),
        ("x-forwarded-for", "unknown", None),
        ("x-forwarded-for", "garbage, 10.0.0.7", None),  # an unreadable hop left of a proxy
        ("x-forwarded-for", "203.0.113.1, 198.51.100.9, 10.0.0.7", "198.51.100.9"),
        ("x-forwarded-for", "10.0.0.9, 10.0.0.7", "10.0.0.9"),  # from inside the office
        ("forwarded", 'for="[2001:db8::9]:443", for=10.0.0.7', "2001:db8::9"),
        ("forwarded", "for=unknown", None),
        ("forwarded", "for=198.51.100.9;by=x;;", "198.51.100.9"),
        ("forwarded", "proto=https", None),  # the proxy named no client
        ("x-real-ip", "198.51.100.9", "198.51.100.9"),
    ],
)
def test_client_behind_a_trusted_proxy(header: str, value: str, client: str | None) -> None:
    clients = ClientAddresses([OFFICE], header)
    resolved = clients.resolve(LOAD_BALANCER, value)
    assert (None if resolved is None else str(resolved)) == client


@pytest.mark.checklist("EX-02")
def test_headers_of_an_untrusted_peer_are_ignored() -> None:
    clients = ClientAddresses([OFFICE])
    assert str(clients.resolve("198.51.100.9", "10.1.2.3")) == "198.51.100.9"
    assert clients.resolve(None, "10.1.2.3") is None
    assert str(clients.resolve("::ffff:198.51.100.9", "")) == "198.51.100.9"


def test_an_unknown_address_never_satisfies_a_bypass_and_always_a_tightening_rule() -> None:
    alice = Principal("alice")
    rules = RuleSet.build(
        [
            {"action": "bypass", "paths": ["/a"], "networks": [OFFICE]},
            {"action": "deny", "paths": ["/b"], "networks": ["203.0.113.0/24"]},
            {"action": "two_factor", "paths": ["/c"], "networks": ["203.0.113.0/24"]},
        ],
        None,
    )
    office = ipaddress.ip_address("10.1.2.3")
    assert rules.action_for("/a", "GET", alice, office) == "bypass"
    assert rules.action_for("/a", "GET", alice, None) is None
    assert rules.action_for("/b", "GET", alice, None) == "deny"
    assert rules.action_for("/b", "GET", alice, office) is None
    assert rules.action_for("/c", "GET", alice, None) == "two_factor"

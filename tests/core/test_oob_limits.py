"""The send limits of `oob.send_code` in isolation: per destination and per client address,
what a refused send leaves behind, and that a capped route falls through to the next one."""

from __future__ import annotations

from typing import Any

import pytest

from mfa_middleware.core import oob
from mfa_middleware.core.context import OobParams
from mfa_middleware.core.keys import Keyring
from mfa_middleware.drivers import run_sync
from mfa_middleware.events import EventSink
from mfa_middleware.senders.base import Message, Sender
from mfa_middleware.senders.delivery import Delivery
from mfa_middleware.stores.memory import MemoryStore

KEYRING = Keyring(["oob-limits-test-key-0123456789-abcdefghijklmnopqrstuvwxyz"])
PHONE = "+14155552671"
NOW = 1_700_000_000.0


class Recorder(Sender):
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


class World:
    def __init__(self, **params: Any) -> None:
        self.store = MemoryStore()
        self.sms, self.email = Recorder("sms"), Recorder("email")
        self.events: list[dict[str, Any]] = []
        self.sink = EventSink(self.events.append)
        self.params = OobParams(**params)

    def send(
        self,
        user: str,
        routes: list[tuple[str, str]],
        now: float,
        ip: str | None = None,
        session: str = "s1",
    ) -> oob.Sent:
        flow = oob.send_code(
            user, session, "login", routes, now, KEYRING, self.params, "App", first=True, ip=ip
        )
        return run_sync(flow, self.store, self.sink, Delivery(self.sms, self.email))


def test_a_destination_cap_counts_every_user_and_frees_after_an_hour() -> None:
    world = World(destination_cap=2)
    assert world.send("alice", [("sms", PHONE)], NOW).ok
    assert world.send("bob", [("sms", PHONE)], NOW + 1).ok
    refused = world.send("carol", [("sms", PHONE)], NOW + 2)
    assert not refused.ok
    assert refused.capped
    assert NOW + 2 + refused.wait == NOW + 3600  # free when the first send's hour is over
    assert len(world.sms.sent) == 2
    limited = [e for e in world.events if e["event"] == "code_send_limited"]
    assert limited == [
        {
            "event": "code_send_limited",
            "user": "carol",
            "limit": "destination",
            "channel": "sms",
            "purpose": "login",
            "to": "+1 •••-•••-2671",
        }
    ]
    assert world.send("carol", [("sms", PHONE)], NOW + 3600).ok


def test_a_refused_send_keeps_the_code_sent_before() -> None:
    world = World(destination_cap=1)
    assert world.send("alice", [("sms", PHONE)], NOW).ok
    before = world.store.get(oob.code_key("alice", "login"))
    assert before is not None
    assert not world.send("alice", [("sms", PHONE)], NOW + 60).ok
    assert world.store.get(oob.code_key("alice", "login")) == before


def test_a_capped_route_falls_through_to_the_next() -> None:
    world = World(destination_cap=1)
    assert world.send("bob", [("sms", PHONE)], NOW).ok
    sent = world.send("alice", [("sms", PHONE), ("email", "alice@example.com")], NOW + 1)
    assert sent.ok
    assert (sent.channel, sent.fallback) == ("email", True)
    assert [m.to for m in world.email.sent] == ["alice@example.com"]
    assert len(world.sms.sent) == 1


def test_a_client_address_cap_counts_every_user() -> None:
    world = World(ip_cap=2)
    assert world.send("alice", [("email", "a@example.com")], NOW, ip="203.0.113.7").ok
    assert world.send("bob", [("email", "b@example.com")], NOW, ip="203.0.113.7").ok
    refused = world.send("carol", [("email", "c@example.com")], NOW, ip="203.0.113.7")
    assert refused.capped
    assert not refused.ok
    assert world.send("carol", [("email", "c@example.com")], NOW, ip="198.51.100.9").ok
    assert world.send("dave", [("email", "d@example.com")], NOW).ok  # no address known
    assert len(world.email.sent) == 4


def test_the_limit_keys_are_keyed_hashes() -> None:
    key = oob.limit_key(KEYRING, "oob_dest", PHONE)
    assert PHONE not in key.part
    assert key == oob.limit_key(KEYRING, "oob_dest", PHONE)
    assert key != oob.limit_key(KEYRING, "oob_ip", PHONE)  # one salt per purpose
    other = Keyring(["another-test-key-0123456789-abcdefghijklmnopqrstuvwxyz-0"])
    assert key != oob.limit_key(other, "oob_dest", PHONE)


def test_the_address_counted_for_the_ip_cap() -> None:
    import ipaddress

    def counted(value: str) -> str | None:
        return oob.rate_limit_address(ipaddress.ip_address(value))

    assert counted("198.51.100.7") == "198.51.100.7"
    for proxy_peer in ("127.0.0.1", "10.1.2.3", "172.20.0.5", "192.168.1.9", "::1", "fd00::1"):
        assert counted(proxy_peer) is None  # an undeclared proxy: no site-wide cap
    assert counted("2001:db8:1:2:aaaa::1") == counted("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert counted("2001:db8:1:3::1") != counted("2001:db8:1:2::1")
    assert oob.rate_limit_address(None) is None


def test_enrollment_and_sign_in_codes_to_one_number_are_capped_apart() -> None:
    world = World(destination_cap=1)
    flow = oob.send_code(
        "bob", "s", "enroll", [("sms", PHONE)], NOW, KEYRING, world.params, "App", first=True
    )
    assert run_sync(flow, world.store, world.sink, Delivery(world.sms, world.email)).ok
    assert world.send("alice", [("sms", PHONE)], NOW + 1).ok  # purpose "login": its own cap
    assert not world.send("carol", [("sms", PHONE)], NOW + 2).ok


def test_an_address_differing_only_in_case_shares_the_cap() -> None:
    world = World(destination_cap=1)
    assert world.send("alice", [("email", "Victim@Example.com")], NOW).ok
    assert world.send("bob", [("email", "victim@example.com")], NOW + 1).capped


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+14155552671", "+1 •••-•••-2671"),
        ("+447911123456", "+44 •••• ••3456"),
        ("+4915123456789", "+49 •••• •••6789"),
        ("+33612345678", "+33 • •• •• 56 78"),
        ("not a number", "•••• mber"),
    ],
)
def test_a_phone_number_is_masked_in_its_own_format(number: str, shown: str) -> None:
    assert oob.mask("sms", number) == shown

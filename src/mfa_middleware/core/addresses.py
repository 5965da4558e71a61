"""Client addresses: as servers and proxies really write them, and who the client is.

Proxies write a hop as `192.0.2.9`, `192.0.2.9:5555`, `2001:db8::9`, `[2001:db8::9]:443`, or
(RFC 7239 `Forwarded`) `for="[2001:db8::9]:443"`; dual-stack listeners report IPv4 clients as
`::ffff:192.0.2.9`. Every address is read through `parse_address`, which accepts all of these
and unmaps IPv4-mapped IPv6, so a rule on `192.0.2.0/24` and a per-address send cap see the
same client whatever the listener.

A hop that still cannot be read (`unknown`, an obfuscated RFC 7239 identifier, garbage) makes
the client address *unknown* (None): never the proxy's own address, which is trusted by
definition and would satisfy rules meant for the proxy's network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
MAX_HOPS = 32  # a longer chain is not one a trusted proxy wrote: unknown


def unmapped(address: Address) -> Address:
    """`::ffff:192.0.2.9` as `192.0.2.9`; any other address unchanged."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(value: str | None) -> Address | None:
    """An IP address as servers and proxies write it, with or without a port, IPv6 in
    brackets or bare, IPv4-mapped IPv6 unmapped; None for anything else."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:  # IPv4 with a port (a bare IPv6 address has several colons)
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
    else:
        host = text
    try:
        return unmapped(ipaddress.ip_address(host))
    except ValueError:
        return None


def peer_text(value: str | None) -> str | None:
    """The peer address as adapters record it: unmapped where it is IPv4-mapped IPv6."""
    address = parse_address(value)
    return value if address is None else str(address)


def forwarded_for(value: str) -> list[str] | None:
    """The `for=` parameter of each element of an RFC 7239 `Forwarded` header, in order; an
    element without one is an empty string; None when the header cannot be parsed."""
    hops: list[str] = []
    element: str | None = None
    i, n = 0, len(value)
    expect_pair = True
    while i < n:
        ch = value[i]
        if ch in " \t":
            i += 1
            continue
        if ch == ",":
            hops.append(element or "")
            element, expect_pair = None, True
            i += 1
            continue
        if ch == ";":
            expect_pair = True
            i += 1
            continue
        if not expect_pair:
            return None
        eq = value.find("=", i)
        if eq == -1:
            return None
        name = value[i:eq].strip().lower()
        i = eq + 1
        if i < n and value[i] == '"':
            end = i + 1
            chars: list[str] = []
            while end < n and value[end] != '"':
                if value[end] == "\\" and end + 1 < n:
                    end += 1
                chars.append(value[end])
                end += 1
            if end >= n:
                return None  # an unterminated quoted string
            parameter = "".join(chars)
            i = end + 1
        else:
            end = i
            while end < n and value[end] not in ",;":
                end += 1
            parameter = value[i:end].strip()
            if any(ch in parameter for ch in ' \t"='):  # a token has no spaces or quotes
                return None
            i = end
        if not name or not parameter:
            return None
        if name == "for":
            element = parameter
        expect_pair = False
    hops.append(element or "")
    return hops


class ClientAddresses:
    """Who the client is: the peer, or, when the peer is a trusted proxy, the right-most hop of
    the configured forwarding header that is not a trusted proxy itself.

    `header` names the one header the proxies write (`x-forwarded-for`, RFC 7239 `forwarded`
    or `x-real-ip`); the others are never read, since a client can send any of them and only
    the one the proxy writes is rewritten by it.
    """

    def __init__(self, trusted_proxies: Iterable[str] = (), header: str = "x-forwarded-for"):
        header = header.lower()
        if header not in FORWARDED_HEADERS:
            raise ValueError(f"forwarded header {header!r}: use one of {FORWARDED_HEADERS}")
        self.proxies: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies
        )
        self.header = header

    def trusted(self, address: Address) -> bool:
        return any(address in net for net in self.proxies)

    def _hops(self, value: str) -> list[str] | None:
        if self.header == "forwarded":
            return forwarded_for(value)
        if self.header == "x-real-ip":
            return [value]
        return [hop.strip() for hop in value.split(",")]

    def resolve(self, peer: str | None, forwarded: str) -> Address | None:
        """The client's address, or None when it is unknown: no peer address, or a hop of a
        trusted proxy's header that cannot be read."""
        address = parse_address(peer)
        if address is None or not self.trusted(address) or not forwarded.strip():
            return address
        hops = self._hops(forwarded)
        if hops is None or len(hops) > MAX_HOPS:
            return None
        for hop in reversed(hops):
            hop_address = parse_address(hop)
            if hop_address is None:
                return None
            if not self.trusted(hop_address):
                return hop_address
            address = hop_address
        return address  # every hop is a trusted proxy: the request comes from their network

"""Where a source may lead Gazette: the policy for every request made because of a source.

A source's own URL is the operator's choice; what its content names (sitemap `<loc>`s and child sitemaps, links
on a section page) and where its servers redirect are the upstream's. Without a policy a sitemap could make
Gazette read `http://169.254.169.254/…` or `http://127.0.0.1:5432/` and publish the answer as an article. So:
- only http and https, and a local file only as a `path` source's own configured location, never from content;
- every connection's address is checked when it is made, after DNS, on the address actually connected to (no
  gap for DNS rebinding): loopback, private, link-local, shared, multicast, reserved and unspecified addresses,
  and IPv6 forms that embed such an IPv4 address, are refused unless the source sets `allow_private_network`
  (an intranet CMS);
- URLs taken from content (and every redirect on the way to them) stay on the source's own site: its host
  without `www.`, and that host's subdomains, plus the hosts the source lists in `allow_hosts`.

`OutboundPolicy` is the pure rule; `GuardedBackend` is the httpcore network backend that applies the address rule
at connect time, and `guarded_transport` an httpx transport that uses it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from .errors import FetchError

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedError(FetchError):
    """The policy refused a URL or an address: nothing was fetched."""


class RefusedAddress(httpcore.ConnectError):
    """Raised inside httpcore at connect time; the fetcher turns it into RefusedError."""


def refused_reason(address: str) -> str | None:
    """Why a source may not reach `address` (an IP literal), or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refused_reason(str(embedded))
            return f"{ip} embeds {reason}" if reason else None
    for name, is_kind in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                          ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
                          ("reserved", ip.is_reserved), ("private", ip.is_private),
                          ("not globally reachable", not ip.is_global)):
        if is_kind:
            return f"{ip} ({name})"
    return None


def site_host(url: str) -> str:
    """The host a source's site is known by: its URL's host, lower case, without `www.`."""
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


@dataclass(frozen=True)
class OutboundPolicy:
    allow_private_network: bool = False
    hosts: tuple[str, ...] | None = None  # None: any host; else these hosts and their subdomains (".x" or "x")
    allow_files: bool = False  # only a `path` source's own location

    def check_url(self, url: str) -> None:
        """Raises RefusedError for a URL this policy never fetches; the address is checked at connect time."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise RefusedError(f"refused {url[:200]!r}: only http(s) URLs are fetched (a local file only as a "
                               "source's configured path)")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise RefusedError(f"refused {url[:200]!r}: no host")
        if self.hosts is not None and not any(host == h or host.endswith("." + h) for h in self.hosts):
            site = f"the source's site ({', '.join(self.hosts)})" if self.hosts else "a site (the source is a file)"
            raise RefusedError(f"refused {url[:200]!r}: {host} is not {site}; list it in the source's allow_hosts "
                               "to fetch from it")

    def for_content(self, location: str, allow_hosts: Iterable[str] = ()) -> OutboundPolicy:
        """The policy for URLs a source's content names: its own site (from its URL) and `allow_hosts` only."""
        hosts = [site_host(location)] if location.startswith(("http://", "https://")) else []
        hosts += [h.lower().lstrip("*").lstrip(".").removeprefix("www.") for h in allow_hosts]
        return replace(self, hosts=tuple(h for h in hosts if h), allow_files=False)


Resolver = Callable[[str, int], list[str]]
AddressRule = Callable[[str], "str | None"]  # an address -> why it is refused, or None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, keeps only the addresses the policy allows, and connects to one of those: the
    address checked is the address connected to. TLS still verifies the certificate for the host name."""

    def __init__(self, allow_private_network: bool, resolver: Resolver = resolve,
                 rule: AddressRule = refused_reason) -> None:
        self._allow_private_network = allow_private_network
        self._resolve = resolver
        self._rule = rule

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        if not self._allow_private_network:
            refusals = [(a, self._rule(a)) for a in addresses]
            allowed = [a for a, reason in refusals if reason is None]
            if not allowed:
                reason = next((r for _, r in refusals if r), "no address")
                raise RefusedAddress(f"{host} leads to {reason}, which sources may not reach (set "
                                     "allow_private_network = true on a source that is on the local network)")
            addresses = allowed
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")


def guarded_transport(allow_private_network: bool, resolver: Resolver = resolve,
                      rule: AddressRule = refused_reason) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through `GuardedBackend`. `resolver` and `rule` are the
    system's DNS and `refused_reason`; tests swap them to stand a loopback address in for a public one."""
    transport = httpx.HTTPTransport(trust_env=False)  # a proxy from the environment would connect for us, unchecked
    pool = transport._pool  # httpx exposes no public hook for the network backend; tests prove this one is used
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpcore has no _network_backend: the outbound guard cannot be installed")
    pool._network_backend = GuardedBackend(allow_private_network, resolver, rule)
    return transport

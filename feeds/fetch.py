"""Fetching a source's bytes: a local file or an http(s) URL, politely, within bounds and within the source's
outbound policy (`outbound`: which schemes, hosts and addresses a fetch may reach, checked on every redirect hop
and, for addresses, at connect time).

`Fetcher` is the small interface ingest needs; `HttpFetcher` is the real one. Over HTTP it sends the stored
validators (a 304 costs one round trip), follows at most five redirects itself so that it can tell a
permanent move (every hop 301/308: the caller stores the new URL) from a temporary one, turns 410 Gone into
`GoneError` (the caller disables the source), caps the body while streaming and the whole exchange in time,
and keeps at most `host_concurrency` requests per host in flight, `host_delay` seconds apart. Tests reach their
loopback servers with a policy that allows the private network, or hand it an `httpx.Client` with
`httpx.MockTransport` for the outside internet (then only the URL rules apply: no connection is made).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import FetchError
from .outbound import (AddressRule, OutboundPolicy, RefusedAddress, RefusedError, Resolver, guarded_transport,
                       refused_reason, resolve)

USER_AGENT = "Gazette/0.1 (feed fetcher)"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
PERMANENT_REDIRECTS = (301, 308)


class GoneError(FetchError):
    """The source answered 410 Gone: it will not come back at this URL."""


@dataclass(frozen=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """What a fetch brought back. `body` is None when the source answered 304 Not Modified."""

    body: bytes | None
    url: str
    content_type: str | None
    validators: Validators
    moved_to: str | None = None  # set when every redirect hop was permanent

    @property
    def is_not_modified(self) -> bool:
        return self.body is None


class Fetcher(Protocol):
    def fetch(self, location: str, validators: Validators, policy: OutboundPolicy | None = None) -> Fetched:
        """`policy` None: the fetcher's default policy (no private network, no local files)."""


class HostLimiter:
    """At most `concurrency` requests per host at once, starting at least `delay` seconds apart."""

    def __init__(self, concurrency: int = 2, delay: float = 0.0) -> None:
        self._concurrency = concurrency
        self._delay = delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = defaultdict(lambda: threading.Semaphore(self._concurrency))
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._lock:
            semaphore = self._slots[host]
        with semaphore:
            if self._delay:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next_start.get(host, now))
                    self._next_start[host] = start + self._delay
                if start > now:
                    time.sleep(start - now)
            yield


class HttpFetcher:
    """Reads http(s) URLs through httpx and, where the policy allows it, a local path."""

    def __init__(self, client: httpx.Client | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 timeout: float = 20.0, deadline: float = 60.0, user_agent: str = USER_AGENT,
                 limiter: HostLimiter | None = None, policy: OutboundPolicy = OutboundPolicy(),
                 resolver: Resolver = resolve, rule: AddressRule = refused_reason) -> None:
        def client_for(allow_private_network: bool) -> httpx.Client:
            return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=False,
                                headers={"User-Agent": user_agent},
                                transport=guarded_transport(allow_private_network, resolver, rule))

        # One client per address rule, so that a connection opened for an intranet source is never reused by
        # another; a client handed in (tests' MockTransport) serves both.
        self._clients = {False: client or client_for(False), True: client or client_for(True)}
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._limiter = limiter or HostLimiter()
        self._policy = policy

    def close(self) -> None:
        for client in set(self._clients.values()):
            client.close()

    def fetch(self, location: str, validators: Validators, policy: OutboundPolicy | None = None) -> Fetched:
        policy = policy or self._policy
        if location.startswith(("http://", "https://")):
            return self._fetch_http(location, validators, policy)
        if not policy.allow_files:
            raise RefusedError(f"refused {location[:200]!r}: not an http(s) URL (local files are read only as a "
                               "source's configured path)")
        return self._fetch_file(Path(location))

    def _fetch_file(self, path: Path) -> Fetched:
        try:
            size = path.stat().st_size
            if size > self._max_bytes:
                raise FetchError(f"{path}: {size} bytes is over the {self._max_bytes}-byte limit")
            body = path.read_bytes()
        except FileNotFoundError:
            raise FetchError(f"{path}: no such file") from None
        except OSError as exc:
            raise FetchError(f"{path}: cannot read ({exc.strerror})") from exc
        return Fetched(body=body, url=str(path), content_type=None, validators=Validators())

    def _fetch_http(self, url: str, validators: Validators, policy: OutboundPolicy) -> Fetched:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                             "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        started = time.monotonic()
        current, is_permanent = url, True
        client = self._clients[policy.allow_private_network]
        try:
            for _ in range(MAX_REDIRECTS + 1):
                policy.check_url(current)  # every hop: a redirect is where a source leads us, too
                with self._limiter.slot(urlsplit(current).hostname or ""):
                    with client.stream("GET", current, headers=headers) as response:
                        if response.is_redirect and "location" in response.headers:
                            is_permanent = is_permanent and response.status_code in PERMANENT_REDIRECTS
                            current = urljoin(current, response.headers["location"])
                            continue
                        moved_to = current if current != url and is_permanent else None
                        return self._read(url, response, validators, started, moved_to)
            raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")
        except RefusedError as exc:
            raise RefusedError(f"{url}: {exc}" if current != url else str(exc)) from None
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, RefusedAddress):
                raise RefusedError(f"{url}: refused: {exc.__cause__}") from None
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc

    def _read(self, url: str, response: httpx.Response, validators: Validators, started: float,
              moved_to: str | None) -> Fetched:
        final = str(response.url)
        if response.status_code == 304:
            return Fetched(body=None, url=final, content_type=None, validators=validators, moved_to=moved_to)
        if response.status_code == 410:
            raise GoneError(f"{url}: HTTP 410 Gone")
        if response.status_code >= 400:
            raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchError(f"{url}: body of {declared} bytes is over the {self._max_bytes}-byte limit")
        chunks, total = [], 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self._max_bytes:
                raise FetchError(f"{url}: body over the {self._max_bytes}-byte limit")
            if time.monotonic() - started > self._deadline:
                raise FetchError(f"{url}: took longer than {self._deadline:.0f} s")
            chunks.append(chunk)
        return Fetched(body=b"".join(chunks), url=final, content_type=response.headers.get("content-type"),
                       validators=Validators(response.headers.get("etag"), response.headers.get("last-modified")),
                       moved_to=moved_to)

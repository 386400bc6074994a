"""Fetching a source's bytes: a local file or an http(s) URL, with conditional GET and a size cap.

`Fetcher` is the small interface ingest needs; `HttpFetcher` is the real one. Tests hand it an
`httpx.Client` on a loopback server or with `httpx.MockTransport` for the outside internet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from .errors import FetchError

USER_AGENT = "Gazette/0.1 (feed fetcher)"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


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

    @property
    def is_not_modified(self) -> bool:
        return self.body is None


class Fetcher(Protocol):
    def fetch(self, location: str, validators: Validators) -> Fetched: ...


class HttpFetcher:
    """Reads http(s) URLs through httpx and everything else as a local path."""

    def __init__(self, client: httpx.Client | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 timeout: float = 20.0, user_agent: str = USER_AGENT) -> None:
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True, headers={"User-Agent": user_agent},
        )
        self._max_bytes = max_bytes

    def close(self) -> None:
        self._client.close()

    def fetch(self, location: str, validators: Validators) -> Fetched:
        if location.startswith(("http://", "https://")):
            return self._fetch_http(location, validators)
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

    def _fetch_http(self, url: str, validators: Validators) -> Fetched:
        headers = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return Fetched(body=None, url=str(response.url), content_type=None, validators=validators)
                if response.status_code >= 400:
                    raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                chunks, total = [], 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > self._max_bytes:
                        raise FetchError(f"{url}: body over the {self._max_bytes}-byte limit")
                    chunks.append(chunk)
                return Fetched(
                    body=b"".join(chunks), url=str(response.url), content_type=response.headers.get("content-type"),
                    validators=Validators(response.headers.get("etag"), response.headers.get("last-modified")),
                )
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc

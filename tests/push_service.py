"""A push service on loopback, for the tests: what a browser vendor's push service checks, done for real.

Each `Browser` is a receiver's key pair and auth secret made here, with an endpoint on this server. A POST to an
endpoint is checked as RFC 8030/8291/8292 say a push service and a browser would: the `Authorization: vapid t=<JWT>,
k=<key>` header (the ES256 signature verified with `cryptography` against `k`, which must be the key Gazette was
configured with; `aud` the endpoint's origin; `exp` in the future and within 24 hours; `sub` the configured
subject), `Content-Encoding: aes128gcm`, a `TTL`, and the body decrypted with the browser's private key and auth
secret (http_ece, RFC 8188/8291). What decrypts is kept per browser; an endpoint answers `status[name]` (201 unless
told: 404, 410, 429, 500 ...). Anything that fails a check is a 400 and is kept in `refusals`, so a test can assert
there were none.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ServerThread


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        return b64url(self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                                 serialization.PublicFormat.UncompressedPoint))

    def subscription(self) -> dict[str, object]:
        """What `PushSubscription.toJSON()` gives in a browser."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}


@dataclass
class Received:
    message: dict[str, object]
    headers: dict[str, str]
    claims: dict[str, object]
    at: float


@dataclass
class PushService:
    """The server's state: the browsers it knows, what each received, what it refused."""

    vapid_public_key: str
    subject: str
    browsers: dict[str, Browser] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def browser(self, name: str) -> Browser:
        made = Browser(name, f"{self.url}/push/{name}", ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.browsers[name] = made
        return made

    def messages(self, name: str) -> list[dict[str, object]]:
        with self.lock:
            return [r.message for r in self.received.get(name, [])]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push/{name}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        try:
            claims = self.check(request, name, body)
            browser = self.browsers[name]
            plain = http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth,
                                     version="aes128gcm")
            message = json.loads(plain.decode("utf-8"))
        except (AssertionError, KeyError, ValueError, InvalidSignature, http_ece.ECEException) as exc:
            with self.lock:
                self.refusals.append(f"{name}: {type(exc).__name__}: {exc}")
            return Response(str(exc), status_code=400)
        status = self.status.get(name, 201)
        if status in (200, 201, 202):
            with self.lock:
                self.received.setdefault(name, []).append(
                    Received(message, dict(request.headers), claims, time.monotonic()))
        return Response(status_code=status)

    def check(self, request: Request, name: str, body: bytes) -> dict[str, object]:
        assert name in self.browsers, f"no browser {name}"
        assert request.headers.get("content-encoding") == "aes128gcm", "Content-Encoding must be aes128gcm"
        ttl = request.headers.get("ttl", "")
        assert ttl.isdigit(), "TTL is required (RFC 8030 §5.2)"
        assert len(body) <= 4096, "a push message holds at most 4096 bytes"
        scheme, _, rest = request.headers.get("authorization", "").partition(" ")
        assert scheme == "vapid", "Authorization must be vapid t=..., k=..."
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        assert parts["k"] == self.vapid_public_key, "k is not the configured VAPID public key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        head, payload, signature = parts["t"].split(".")
        header = json.loads(unb64url(head))
        assert header.get("alg") == "ES256", "the JWT must be ES256"
        raw = unb64url(signature)
        assert len(raw) == 64, "an ES256 signature is r || s, 64 bytes"
        public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                      f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(unb64url(payload))
        assert claims["aud"] == self.url, f"aud {claims['aud']!r} is not the endpoint's origin"
        assert time.time() < claims["exp"] <= time.time() + 24 * 3600, "exp must be within 24 hours"
        assert claims["sub"] == self.subject, "sub is not the configured subject"
        return claims


class LoopbackPushService:
    """`with LoopbackPushService(public_key, subject) as service:` a `PushService` served on 127.0.0.1."""

    def __init__(self, vapid_public_key: str, subject: str) -> None:
        self.service = PushService(vapid_public_key, subject)
        self.server = ServerThread(self.service.app())

    def __enter__(self) -> PushService:
        self.server.__enter__()
        self.service.url = self.server.url
        return self.service

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

"""Signed tokens for the links in pages and mails, and the CSRF token of forms (itsdangerous).

Each purpose has its own salt, so a token made for one purpose never opens another (an unsubscribe token is not a
confirmation, an archive token opens only the archive). A token names a subscriber by their random `public_id` and
carries no address, name or other personal data (the payload of a signed token is readable by anyone who has it);
erasing and re-adding an address makes a new id, so old links die. Links made before that (`{"s": id, "e":
address}`) are still read until they expire. Lifetimes: a confirmation link lasts two days; preference and
unsubscribe links come in every mail and must keep working for a long time (RFC 8058 asks that a one-click link work
for as long as mail may be read); an archive link names a segment of an edition, not a reader.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
)

from feeds.core.clock import utc_now

from .errors import TokenError
from .records import LinkOwner

LIFETIMES = {
    "confirm": timedelta(days=2),
    "preferences": timedelta(days=400),
    "unsubscribe": timedelta(days=400),
    "archive": timedelta(days=400),
    "consent": timedelta(days=60),  # the two-yearly "keep receiving advertising?" question
    "csrf": timedelta(hours=6),
}


@dataclass(frozen=True)
class Tokens:
    """Makes and reads tokens with the site's signing key."""

    signing_key: str
    clock: Callable[[], datetime] = field(default=utc_now)

    def __post_init__(self) -> None:
        # One serializer per purpose, made once: building them costs more than signing (a digest run makes three
        # tokens per subscriber).
        clock = self.clock
        derived: dict[tuple[object, object], bytes] = {}

        class ClockSigner(TimestampSigner):  # token times come from the injected clock, like every other time
            def get_timestamp(self) -> int:
                return int(clock().timestamp())

            def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
                # The serializer makes a signer per token and the signer derives its key per signature: the same
                # key each time, so it is derived once.
                key = (secret_key, self.salt)
                if key not in derived:
                    derived[key] = super().derive_key(secret_key)
                return derived[key]

        serializers = {purpose: URLSafeTimedSerializer(self.signing_key, salt=f"gazette.{purpose}", signer=ClockSigner)
                       for purpose in LIFETIMES}
        object.__setattr__(self, "_serializers", serializers)

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        try:
            return self._serializers[purpose]  # type: ignore[attr-defined, no-any-return]
        except KeyError:
            raise ValueError(f"unknown token purpose {purpose!r}") from None

    def make(self, purpose: str, payload: Mapping[str, Any]) -> str:
        return self._serializer(purpose).dumps(dict(payload))

    def read(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload, or TokenError(reason="expired" | "invalid")."""
        try:
            payload = self._serializer(purpose).loads(token, max_age=int(LIFETIMES[purpose].total_seconds()))
        except SignatureExpired:
            raise TokenError("expired", purpose) from None
        except BadSignature:
            raise TokenError("invalid", purpose) from None
        if not isinstance(payload, dict):
            raise TokenError("invalid", purpose)
        return payload

    # Subscriber links: the opaque id, nothing else.
    def for_subscriber(self, purpose: str, public_id: str) -> str:
        return self.make(purpose, {"p": public_id})

    def subscriber_of(self, purpose: str, token: str) -> LinkOwner:
        """Whom the link names: {"p": public id}, or {"s": id, "e": address} in links made before public ids."""
        payload = self.read(purpose, token)
        public_id = payload.get("p")
        if isinstance(public_id, str) and public_id:
            return LinkOwner(public_id=public_id)
        subscriber_id, email = payload.get("s"), payload.get("e")
        if isinstance(subscriber_id, int) and not isinstance(subscriber_id, bool) and isinstance(email, str):
            return LinkOwner(subscriber_id=subscriber_id, email=email)
        raise TokenError("invalid", purpose)

    # The web copy ("view in browser"): an edition's segment, shown without anybody's links. The purpose string stays
    # "archive", its name when mails already sent were signed: their links must keep working.
    def for_web_copy(self, edition_id: int, segment_id: int) -> str:
        return self.make("archive", {"d": edition_id, "g": segment_id})

    def web_copy_of(self, token: str) -> tuple[int, int]:
        payload = self.read("archive", token)
        edition_id, segment_id = payload.get("d"), payload.get("g")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (edition_id, segment_id)):
            raise TokenError("invalid", "archive")
        return edition_id, segment_id  # type: ignore[return-value]

    # CSRF, double-submit: a random value in a cookie and the same value, signed, in the form.
    @staticmethod
    def new_csrf_secret() -> str:
        return secrets.token_urlsafe(24)

    def csrf_field(self, cookie_value: str) -> str:
        return self.make("csrf", {"c": cookie_value})

    def is_csrf_valid(self, cookie_value: str | None, field_value: str | None) -> bool:
        if not cookie_value or not field_value:
            return False
        try:
            payload = self.read("csrf", field_value)
        except TokenError:
            return False
        return secrets.compare_digest(str(payload.get("c", "")), cookie_value)

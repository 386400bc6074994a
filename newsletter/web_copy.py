"""The web copy of a digest: the page behind the mail's "view in browser" link (`newsletter.http.web_copy` serves it).

The page is the segment's stored HTML, so it is what its readers were sent, without a copy per reader; but it
shows nobody's address or links: a digest is forwarded, and whoever opens a forwarded link must not be able to
change or cancel the subscription. Where the mail had the reader's own links, the page links to /link, where a
reader gets theirs by mail. The token names the edition's segment only (`Tokens.for_web_copy`); links made before
that carried the reader's preferences token, and are still read (their delivery row says which segment) until
they expire, to the same page.

"Web copy", not "archive": the feeds' archives (RFC 5005) are another thing. The URL path /archive/{edition}/{token}
and the token purpose "archive" keep their old names, because links in mails already sent must keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from feeds.core.database import is_storable_id

from .compose import EMAIL, NAME, PREFERENCES, UNSUBSCRIBE, WEB_COPY, replace_markers
from .deliveries import DeliveryStore
from .errors import TokenError
from .messages import TEXT
from .subscribers import SubscriberStore
from .subscription import LinkProblem
from .tokens import Tokens


@dataclass(frozen=True)
class WebCopy:
    """A digest's page, with nobody's address or links on it."""

    html: str


@dataclass(frozen=True)
class WebCopies:
    """Finds the segment a web-copy link names and fills its markers with nobody's values."""

    base_url: str
    deliveries: DeliveryStore
    subscribers: SubscriberStore
    tokens: Tokens

    def web_copy(self, edition_id: int, token: str) -> WebCopy | LinkProblem:
        """The page, or a LinkProblem: "expired", "invalid" (not ours), "missing" (no such edition or segment)."""
        try:
            segment_id = self._segment_of(token, edition_id)
        except TokenError as exc:
            return LinkProblem(exc.reason)
        found = self.deliveries.segment(segment_id) if segment_id is not None else None
        if found is None or found[0] != edition_id:
            return LinkProblem("missing")
        _, mail, language = found
        base = self.base_url
        return WebCopy(replace_markers(mail.html, {EMAIL: TEXT[language if language in TEXT else "ko"]["address_hidden"],
                                        NAME: "", UNSUBSCRIBE: f"{base}/link", PREFERENCES: f"{base}/link",
                                        WEB_COPY: f"{base}/archive/{edition_id}/{token}"}))

    def _segment_of(self, token: str, edition_id: int) -> int | None:
        """The segment a web-copy token names, or (a link made before those tokens) the one the reader got."""
        if not is_storable_id(edition_id):
            return None
        try:
            token_edition, segment_id = self.tokens.web_copy_of(token)
        except TokenError as exc:
            if exc.reason == "expired":
                raise
            try:
                owner = self.tokens.subscriber_of("preferences", token)
            except TokenError:
                raise exc from None
            subscriber = self.subscribers.owner_of(owner)
            delivery = self.deliveries.delivery(edition_id, subscriber.id) if subscriber is not None else None
            return int(delivery["segment_id"]) if delivery and delivery["segment_id"] else None  # type: ignore[arg-type]
        return segment_id if token_edition == edition_id else None

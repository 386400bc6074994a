"""A reader's links, made in one place: preferences, unsubscribe, consent, confirmation and the web copy.

Every link is the site's base URL, a path naming what it is for, and a signed token (`Tokens`). A link that acts
for a reader names them by their opaque public id only, never by address or row id; the web copy of a digest
("view in browser", `/archive/...`) names the edition's segment and nobody, because digests are forwarded.
The mails (digests, notices) and the pages (preferences, confirmation) all take their links from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Choices
from .tokens import Tokens


@dataclass(frozen=True)
class ReaderLinks:
    """The two links every mail and settings page gives a reader."""

    preferences: str
    unsubscribe: str


@dataclass(frozen=True)
class Links:
    base_url: str  # the site's, without a trailing slash
    tokens: Tokens

    def page(self, purpose: str, public_id: str) -> str:
        """`{base}/{purpose}/{token}` for the reader `public_id`: purpose is preferences, unsubscribe or consent."""
        return f"{self.base_url}/{purpose}/{self.tokens.for_subscriber(purpose, public_id)}"

    def for_reader(self, public_id: str) -> ReaderLinks:
        return ReaderLinks(preferences=self.page("preferences", public_id),
                           unsubscribe=self.page("unsubscribe", public_id))

    def confirmation(self, public_id: str, nonce: str | None, choices: Choices, lang: str, *, agreed: bool) -> str:
        """The double opt-in link: whom, the nonce it must match and the choices made on the form (never the
        address or the name: those wait in the pending row). `agreed`: the required consent was ticked on our form."""
        token = self.tokens.make("confirm", {
            "p": public_id, "k": nonce, "c": list(choices.categories), "d": list(choices.editions),
            "l": lang, "z": choices.timezone, "a": bool(choices.ads), "v": agreed})
        return f"{self.base_url}/confirm/{token}"

    def web_copy(self, edition_id: int, segment_id: int) -> str:
        """A digest's "view in browser" page: one per segment, naming no reader."""
        return f"{self.base_url}/archive/{edition_id}/{self.tokens.for_web_copy(edition_id, segment_id)}"

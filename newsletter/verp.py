"""Signed tags that tie a bounce or a complaint to a message we sent (VERP return paths and Message-IDs).

Every message carries one tag, `<kind><number>-<subscriber>-<mac>`:
- kind `d`, a digest: number = the edition's id, so a resend after a crash has the same tag and Message-ID;
- kind `n`, a notice (confirmation, new link): number = a random nonce;
- kind `s`, a shared article: subscriber 0, since its recipient is nobody we keep.
`mac` is 16 hex digits of HMAC-SHA256 under a key derived from the site's signing key, so a tag cannot be made up
for another reader. The envelope sender is `<local>+<tag>@<domain>` (VERP, built on `[mail] return_path`), and the
Message-ID is `<<tag>@<domain>>`. A delivery status notification comes back to that address and quotes the
Message-ID; a feedback-loop report quotes the original's headers: `TagCodec.find` reads a valid tag in either, and
bounce intake believes a report only about the subscriber its tag names.

Tags are lower-case letters, digits and hyphens: they survive MTAs that change the case of local parts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KINDS = ("d", "n", "s")
_TAG = re.compile(r"(?<![0-9a-z])([dns])(\d{1,19})-(\d{1,19})-([0-9a-f]{16})(?![0-9a-z])", re.IGNORECASE)


@dataclass(frozen=True)
class MailTag:
    kind: str
    number: int
    subscriber_id: int

    @property
    def body(self) -> str:
        return f"{self.kind}{self.number}-{self.subscriber_id}"


@dataclass(frozen=True)
class TagCodec:
    """Makes and checks tags, and the addresses and Message-IDs that carry them."""

    signing_key: str
    return_path: str  # e.g. bounce@news.example.com; tags go after a "+" in its local part

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", hashlib.sha256(b"gazette.return-path\x00" + self.signing_key.encode()).digest())
        local, _, domain = self.return_path.rpartition("@")
        object.__setattr__(self, "_local", local)
        object.__setattr__(self, "_domain", domain)

    def tag(self, tag: MailTag) -> str:
        return f"{tag.body}-{self._mac(tag.body)}"

    def digest(self, edition_id: int, subscriber_id: int) -> str:
        return self.tag(MailTag("d", edition_id, subscriber_id))

    def notice(self, subscriber_id: int) -> str:
        return self.tag(MailTag("n", secrets.randbelow(10**12), subscriber_id))

    def share(self) -> str:
        return self.tag(MailTag("s", secrets.randbelow(10**12), 0))

    def envelope_from(self, tag: str) -> str:
        return f"{self._local}+{tag}@{self._domain}"

    def message_id(self, tag: str, domain: str) -> str:
        return f"<{tag}@{domain}>"

    def find(self, *texts: str) -> MailTag | None:
        """The first valid tag in `texts` (header values, addresses); forged or damaged ones are ignored."""
        for text in texts:
            for match in _TAG.finditer(text or ""):
                kind, number, subscriber, mac = match[1].lower(), match[2], match[3], match[4].lower()
                found = MailTag(kind, int(number), int(subscriber))
                if f"{kind}{number}-{subscriber}" == found.body and hmac.compare_digest(mac, self._mac(found.body)):
                    return found
        return None

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()[:16]  # type: ignore[attr-defined]

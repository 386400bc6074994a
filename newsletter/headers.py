"""Mail headers that no reader's, sender's or upstream string can break out of.

Every header we send is written here, by us, never by Python's header folder: that one *decodes* RFC 2047 encoded
words it finds in a display name while it writes, so a subscriber named `=?utf-8?q?x=0D=0AContent-Type:…?=` once
wrote their own header lines into mail we sent and signed. The rules:
- `header_text`: a value becomes one line of text. Control characters (C0, DEL, C1 such as NEL), the line and
  paragraph separators U+2028/U+2029 become spaces; bidirectional overrides, which can make a name read as
  another, are removed; runs of spaces become one.
- `encode_text`: printable ASCII without `=?` goes as it is (folded at spaces under 78 characters); anything else,
  including text that merely looks like an encoded word and words too long to fold, becomes our own encoded
  words, so a mail client shows exactly the characters given.
- `phrase`, `address_header`: a display name by the same rule (quoted when it holds specials), and an address only
  as email-validator accepted it.
- `header_line`: the last check before bytes: a header's value may break lines only as folding (CRLF + space).
"""

from __future__ import annotations

import re
from email.header import Header
from email.utils import quote

_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
_FOLD = "\r\n "
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_ADDRESS = re.compile(r"^[^\s<>()\[\]\\,;:\"\x00-\x1f\x7f]+@[^\s<>()\[\]\\,;:\"@\x00-\x1f\x7f]+$")


class HeaderError(ValueError):
    """A value that would break a header's line; raised only for addresses (text is cleaned, never refused)."""


def header_text(value: str | None, limit: int = 200) -> str:
    """`value` as one line of visible text, at most `limit` characters."""
    text = _BIDI.sub("", _BREAKING.sub(" ", value or ""))
    return _SPACES.sub(" ", text).strip()[:limit].strip()


def is_plain(text: str) -> bool:
    """Printable ASCII that no mail client would read as an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


def encode_text(text: str, header_name: str) -> str:
    """An unstructured header value (Subject, a List-Id's phrase) for `header_name`, folded, ASCII only."""
    text = header_text(text, limit=998)
    if is_plain(text) and max(map(len, text.split(" ")), default=0) <= 76:  # foldable at its spaces
        return Header(text, "us-ascii", header_name=header_name).encode(linesep="\r\n")
    # Header splits between characters, never at a space, so no space is lost between encoded words.
    return Header(text, "utf-8", header_name=header_name).encode(linesep="\r\n")


def check_address(address: str) -> str:
    """An addr-spec fit for a header and an SMTP command; HeaderError otherwise. Non-ASCII is allowed (SMTPUTF8)."""
    if not _ADDRESS.match(address) or any(c in address for c in "\u2028\u2029\x85"):
        raise HeaderError(f"{address!r} is not an address we can write into a header")
    return address


def phrase(text: str | None, header_name: str) -> str:
    """A display name (of an address, of a List-Id): quoted when it holds specials, our encoded words when it is
    not plain ASCII; "" for nothing."""
    display = header_text(text, limit=100)
    if is_plain(display):
        return f'"{quote(display)}"' if _SPECIALS.search(display) else display
    return Header(display, "utf-8", header_name=header_name).encode(linesep="\r\n")


def address_header(name: str | None, address: str, header_name: str = "To") -> str:
    """`Name <address>` with the name written by `phrase`, or the bare address without a name."""
    check_address(address)
    display = phrase(name, header_name)
    return f"{display} <{address}>" if display else address


def header_line(name: str, value: str) -> str:
    """`Name: value` + CRLF; a line break in `value` that is not folding is a bug, refused here."""
    unfolded = value.replace(_FOLD, "").replace("\r\n\t", "")
    if _BREAKING.search(unfolded):
        raise HeaderError(f"{name} would carry a line break or a control character")
    return f"{name}: {value}\r\n"

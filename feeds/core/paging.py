"""One way to page through every list the API answers: a `limit` and an opaque cursor, `next_cursor` null on the last
page.

A cursor names the last item a page held (its sort key: an id, a slug, a time and an id), never a position, so
rows added or removed while a client walks the list do not shift it onto a row twice or past one it has not seen
(keyset paging: each page is one indexed range query however deep it goes). The cursor is the key as JSON, tagged
with the list it belongs to, in URL-safe base64: opaque to clients, so the key may change without breaking them.

Pure: no HTTP, no database. `decode_cursor` checks everything a client could have changed (length, encoding,
the list's tag, the key's shape, integers within the database's range, no NUL) and raises `BadCursor` (422), so a
cursor made up or cut short is refused, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable, Generic, Sequence, TypeVar

from .database import MAX_ID
from .errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 512  # a key of a few ids, a slug or a time and an id: far less
MAX_KEY_TEXT = 320  # the longest text a key holds (an e-mail address)

T = TypeVar("T")
KeyPart = int | str | datetime
Key = tuple[KeyPart, ...]


class BadCursor(Invalid):
    """A cursor this list did not hand out: changed, cut short, or another list's."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cursor: {reason}; start again without one, then follow next_cursor")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items and the cursor of the next page (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(kind: str, key: Key) -> str:
    """The cursor after the item whose sort key is `key`, in the list named `kind`."""
    plain = [kind, *(part.isoformat() if isinstance(part, datetime) else part for part in key)]
    raw = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, kind: str, shape: Sequence[type]) -> Key | None:
    """The key `encode_cursor` put in `cursor` for the list `kind`, its parts of the types in `shape` (int, str or
    an aware datetime); None without a cursor. Raises `BadCursor` for anything else."""
    if cursor is None:
        return None
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise BadCursor("empty or too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        plain = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise BadCursor("not one of ours") from None
    if not isinstance(plain, list) or len(plain) != len(shape) + 1 or plain[0] != kind:
        raise BadCursor(f"not a cursor of {kind}")
    return tuple(_part(value, expected) for value, expected in zip(plain[1:], shape))


def _part(value: object, expected: type) -> KeyPart:
    if expected is int:
        if type(value) is not int or not -MAX_ID - 1 <= value <= MAX_ID:
            raise BadCursor("a number out of range")
        return value
    if not isinstance(value, str) or len(value) > MAX_KEY_TEXT or "\x00" in value:
        raise BadCursor("a key that is not text")
    if expected is str:
        return value
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadCursor("a time that does not parse") from None
    if at.tzinfo is None:
        raise BadCursor("a time without its zone")
    try:
        return at.astimezone(UTC)  # as the database keeps times; one past year 1 or 9999 in UTC is refused here
    except OverflowError:
        raise BadCursor("a time out of range") from None


def page_of(rows: Sequence[T], limit: int, kind: str, key_of: Callable[[T], Key]) -> Page[T]:
    """The page made of `rows`: up to `limit + 1` rows following the cursor in the list's order (the one past the
    limit, fetched but not shown, says that another page follows)."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items, encode_cursor(kind, key_of(items[-1])) if more else None)


def page_in_memory(rows: Sequence[T], limit: int, kind: str, key_of: Callable[[T], Key], after: Key | None) -> Page[T]:
    """A page of a short list held whole (sources, partners), by the same rule: sorted by `key_of`, the rows after
    the key `after`."""
    ordered = sorted(rows, key=key_of)
    if after is not None:
        ordered = [row for row in ordered if key_of(row) > after]
    return page_of(ordered[:limit + 1], limit, kind, key_of)

"""Dates as sources write them -> aware datetimes. Pure.

ISO 8601 with or without a zone, RFC 822, and the Korean forms of news sites ("2022-11-18 16:55:02",
"2022.11.18 16:55", "2022년 11월 18일", "2022.11.18(금) 오후 4:55"). A time that names no zone is read in the
site's time zone, since that is what a Korean CMS means by it.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from email.utils import parsedate_to_datetime

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?(?![\d:])")
KOREAN_DATE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*(?:년|[./-])\s*(?P<mo>\d{1,2})\s*(?:월|[./-])\s*(?P<d>\d{1,2})(?!\d)\s*(?:일|\.)?"
    r"(?:\s*\(?[월화수목금토일](?:요일)?\)?)?"  # a weekday: "2022.11.18(금)", "18일 금요일"
    r"(?:\s*(?P<ampm>오전|오후|AM|PM|am|pm)?\s*(?P<h>\d{1,2})\s*"
    r"(?::\s*(?P<mi>\d{2})(?::(?P<s>\d{2}))?|시(?:\s*(?P<mi2>\d{1,2})\s*분)?(?:\s*(?P<s2>\d{1,2})\s*초)?))?")


def parse_date(text: str, timezone: tzinfo) -> datetime | None:
    """The first date in `text` as an aware datetime, or None. A label around it ("입력 2022.11.18 16:55") is fine.

    ISO 8601 with or without a zone, RFC 822, and Korean forms: "2022.11.18 16:55", "2022년 11월 18일 16시 55분",
    "2022-11-18", "2022.11.18(금) 오후 4:55". A time without a zone is read in `timezone`, the site's.
    """
    text = " ".join((text or "").split())
    if not text:
        return None
    iso, korean = _ISO.search(text), KOREAN_DATE.search(text)
    try:
        if iso and (not korean or iso.start() <= korean.start()):
            value = datetime.fromisoformat(iso.group())
        elif korean:
            hour = int(korean["h"] or 0) % (12 if korean["ampm"] else 24)
            hour += 12 if (korean["ampm"] or "").lower() in ("오후", "pm") else 0
            value = datetime(int(korean["y"]), int(korean["mo"]), int(korean["d"]), hour,
                             int(korean["mi"] or korean["mi2"] or 0), int(korean["s"] or korean["s2"] or 0))
        else:
            value = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone)

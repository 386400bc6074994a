"""The audience side's handle on the UI words, and the one choice of the subscription pages that is not words.

The words themselves (Korean first, English) are gettext catalogues: templates/locale/<lang>/LC_MESSAGES/gazette.po,
read once as `templates.CATALOGUE` (a `feeds.core.i18n.Catalogue`). Here, under the names the audience side uses:

    TEXT[lang]["key"]                        one language's words (templates get `TEXT[lang]` as `t`)
    pick_language(requested, stored, site)   the language to answer in; Korean when none of them is known
    LANGUAGES                                the languages there are catalogues for, Korean first

`{site}` and other fields are filled by `str.format` in the template, after escaping, so nothing a reader typed is
ever part of a format string.
"""

from __future__ import annotations

from templates import CATALOGUE

TEXT = CATALOGUE
LANGUAGES = CATALOGUE.languages
pick_language = CATALOGUE.pick_language

# Offered first in the time-zone field (a datalist of every zone follows): where our readers mostly live.
TIMEZONES = ("Asia/Seoul", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore", "Australia/Sydney", "Europe/London",
             "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")

"""The words of the UI: one gettext catalogue (`.po`) per language, read with Babel at start-up.

    <directory>/<lang>/LC_MESSAGES/<domain>.po      e.g. templates/locale/ko/LC_MESSAGES/gazette.po

A message id is a key (`subscribe_title`), its msgstr the words in that language; `{fields}` in the words are
filled by `str.format` after the caller escapes what it puts in, so nothing a reader typed is ever a format
string. A message with a plural (`msgid_plural`) is chosen by the count through the catalogue's `Plural-Forms`
header, gettext's rule. The `.po` files are read as they are: no compiled `.mo`, no build step.

The first language (Korean) is the default. Nothing falls back from one language to another: `Catalogue.load`
refuses a set of catalogues where a key is missing, untranslated or fuzzy in any language, or where the languages
disagree on a message's `{fields}` (`problems` lists them all), so a missing word fails at start, not in a reader's
mail.
"""

from __future__ import annotations

import gettext
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DEFAULT_LANGUAGE = "ko"


class CatalogueError(ValueError):
    """The catalogues cannot be used as they are; the message names every problem, one per line."""


def pick_language(languages: Sequence[str], *candidates: str | None) -> str:
    """The first candidate that is one of `languages` (e.g. the `?lang=` asked for, the subscriber's stored
    language, the site's), else the first language."""
    for candidate in candidates:
        if candidate in languages:
            return candidate  # type: ignore[return-value]
    return languages[0]


def fields_of(text: str) -> frozenset[str]:
    """The `{fields}` a text expects, by name (`{views:,}` is `views`)."""
    return frozenset(name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text)
                     if name is not None)


@dataclass(frozen=True)
class Plural:
    """A message with plural forms: `forms[choose(n)]` is the form for a count of `n`."""

    forms: tuple[str, ...]
    choose: Callable[[int], int] = field(compare=False)

    def form(self, n: int) -> str:
        return self.forms[min(self.choose(n), len(self.forms) - 1)]


class Words(Mapping[str, str]):
    """One language's words: `words["key"]` or, in a template, `t.key` (Jinja tries the item after the attribute).

    Plural messages are not items; `count(key, n)` picks their form. `number` and `date` format for this
    language with Babel (`12,345`, `2026년 3월 5일` / `March 5, 2026`).
    """

    def __init__(self, language: str, texts: Mapping[str, str], plurals: Mapping[str, Plural]) -> None:
        self.language = language
        self._texts = dict(texts)
        self._plurals = dict(plurals)

    def __getitem__(self, key: str) -> str:
        return self._texts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def text(self, key: str, /, **fields: Any) -> str:
        return self._texts[key].format(**fields)

    def count(self, key: str, n: int, /, **fields: Any) -> str:
        """The plural message `key` for `n` things; `{count}` in it is `n` written for this language."""
        return self._plurals[key].form(n).format(count=self.number(n), **fields)

    def number(self, n: int | float) -> str:
        return format_decimal(n, locale=self.language)

    def date(self, moment: datetime, style: str = "long") -> str:
        """A (local) date for readers: Babel's `style` (short, medium, long, full) or a CLDR pattern."""
        return format_date(moment, style, locale=self.language)

    @property
    def plural_keys(self) -> frozenset[str]:
        return frozenset(self._plurals)

    def plural_forms(self, key: str) -> tuple[str, ...]:
        return self._plurals[key].forms


class Catalogue(Mapping[str, Words]):
    """Every language's words, the first language first: `catalogue[lang]` (or `words(lang)`) is one language's
    table, `lang in catalogue` says whether there is one. Built by `load`, or from `Words` in tests."""

    def __init__(self, words: Mapping[str, Words]) -> None:
        problems = check(words)
        if problems:
            raise CatalogueError("the UI catalogues disagree:\n" + "\n".join(problems))
        self._words = dict(words)
        self.languages: tuple[str, ...] = tuple(words)

    @classmethod
    def load(cls, directory: Path, domain: str = "gazette", default: str = DEFAULT_LANGUAGE) -> Catalogue:
        """Read `<directory>/<lang>/LC_MESSAGES/<domain>.po` for every language found; `default` comes first."""
        found = {path.parent.parent.name: path for path in sorted(directory.glob(f"*/LC_MESSAGES/{domain}.po"))}
        if default not in found:
            raise CatalogueError(f"{directory}: no {default}/LC_MESSAGES/{domain}.po (the default language)")
        order = [default, *(lang for lang in found if lang != default)]
        return cls({lang: read_words(found[lang], lang) for lang in order})

    def __getitem__(self, language: str) -> Words:
        return self._words[language]

    def __iter__(self) -> Iterator[str]:
        return iter(self._words)

    def __len__(self) -> int:
        return len(self._words)

    def words(self, language: str) -> Words:
        """One language's table, the `t` templates get. An unknown language is a KeyError: pick it first."""
        return self._words[language]

    def text(self, language: str, key: str, /, **fields: Any) -> str:
        return self._words[language].text(key, **fields)

    def count(self, language: str, key: str, n: int, /, **fields: Any) -> str:
        return self._words[language].count(key, n, **fields)

    def pick_language(self, requested: str | None, stored: str | None, site_language: str | None) -> str:
        """The language to answer in: the one asked for (`?lang=`, a form field), else the reader's stored one,
        else the site's, else the first language; each only if the catalogue has it."""
        return pick_language(self.languages, requested, stored, site_language)

    @property
    def keys(self) -> frozenset[str]:
        """Every message id, plural ones included."""
        first = self._words[self.languages[0]]
        return frozenset(first) | first.plural_keys


def read_words(path: Path, language: str) -> Words:
    """One `.po` file as a language's `Words`. Untranslated and fuzzy messages are left out, so `check` names them
    as missing instead of showing readers a key."""
    with path.open("rb") as file:
        catalog: Catalog = read_po(file, locale=language, abort_invalid=True)
    choose = gettext.c2py(catalog.plural_expr)
    texts: dict[str, str] = {}
    plurals: dict[str, Plural] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if message.pluralizable:
            forms = tuple(message.string)
            if all(forms):
                plurals[message.id[0]] = Plural(forms, choose)
        elif message.string:
            texts[message.id] = message.string
    return Words(language, texts, plurals)


def check(words: Mapping[str, Words]) -> list[str]:
    """What stops these tables from being one catalogue: a key missing in a language (or plural in one and not in
    another), and a message whose `{fields}` differ between languages or between its plural forms."""
    if not words:
        return ["no languages"]
    problems: list[str] = []
    every = {lang: (frozenset(w), w.plural_keys) for lang, w in words.items()}
    keys = frozenset().union(*(texts for texts, _ in every.values()))
    plural_keys = frozenset().union(*(plurals for _, plurals in every.values()))
    for lang, (texts, plurals) in every.items():
        problems += [f"{lang}: {key}: missing" for key in sorted((keys - texts) - plurals)]
        problems += [f"{lang}: {key}: missing plural forms" for key in sorted(plural_keys - plurals)]
    for key in sorted(keys):
        seen = {lang: fields_of(w[key]) for lang, w in words.items() if key in w}
        if len(set(seen.values())) > 1:
            problems.append(f"{key}: fields differ: " + "; ".join(f"{lang} {sorted(f)}" for lang, f in seen.items()))
    for key in sorted(plural_keys):
        seen = {f"{lang}[{i}]": fields_of(form) for lang, w in words.items() if key in w.plural_keys
                for i, form in enumerate(w.plural_forms(key))}
        if len(set(seen.values())) > 1:
            problems.append(f"{key}: fields differ: " + "; ".join(f"{at} {sorted(f)}" for at, f in seen.items()))
    return problems

"""The UI catalogues (templates/locale/<lang>/LC_MESSAGES/gazette.po, read by feeds/core/i18n.py): they parse, every
key is in every language with the same {fields}, no key is dead, and the language choice follows its rules."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

import templates
from feeds.core.i18n import Catalogue, CatalogueError, Words, check, fields_of, pick_language
from newsletter import messages

ROOT = Path(__file__).resolve().parent.parent
LOCALE = templates.directory() / "locale"
CATALOGUE = templates.CATALOGUE
PO_FILES = sorted(LOCALE.glob("*/LC_MESSAGES/gazette.po"))

# Keys the code builds from parts: the pattern that builds them (it must still be in the source) and what it makes.
BUILT = {
    'title=t[f"{reason}_title"], message=t[reason]': {"expired_title", "invalid_title", "expired", "invalid"},
    't[f"{kind}_subject"]': {"confirm_subject", "manage_subject", "welcome_subject", "consent_result_subject",
                             "ads_granted_subject", "ads_withdrawn_subject", "reconfirm_subject"},
    't[f"{kind}_body"]': {"confirm_body", "manage_body"},  # the other notices pass their own body
    't[f"ads_{change}_body"]': {"ads_granted_body", "ads_withdrawn_body"},
    'TEXT[lang][f"push_{w}"]': {f"push_{w}" for w in ("button", "off", "done", "off_done", "denied", "unsupported",
                                                       "failed", "sections", "ads", "unsubscribe", "title")},
}
# Words put in the catalogue before the code that shows them (none now). A key here must still be unused, so it
# leaves this set as soon as the code uses it.
AWAITING: set[str] = set()
WORDS_METHODS = {"text", "count", "number", "date", "format", "get", "items", "keys", "values", "language"}


def source_text() -> tuple[str, str]:
    """(Python source of the service, the templates' source)."""
    code = [ROOT / "service.py", *sorted((ROOT / "feeds").rglob("*.py")), *sorted((ROOT / "newsletter").rglob("*.py"))]
    pages = sorted(p for p in templates.directory().rglob("*") if p.suffix in (".html", ".txt"))
    return "\n".join(p.read_text() for p in code), "\n".join(p.read_text() for p in pages)


@pytest.mark.parametrize("path", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_po_file_parses_and_names_its_language(path: Path) -> None:
    language = path.parent.parent.name
    with path.open("rb") as file:
        catalog = read_po(file, abort_invalid=True)
    assert str(catalog.locale) == language
    assert catalog.plural_forms == Catalog(locale=language).plural_forms  # CLDR's rule for the language
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy messages are not used: review them"
    assert not [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]


def test_korean_first_then_english() -> None:
    assert CATALOGUE.languages == ("ko", "en") == messages.LANGUAGES
    assert {p.parent.parent.name for p in PO_FILES} == set(CATALOGUE.languages)


def test_catalogues_agree() -> None:
    assert check(CATALOGUE) == []


@pytest.mark.parametrize("key", sorted(CATALOGUE.keys))
def test_every_key_in_every_language_with_the_same_fields(key: str) -> None:
    def texts(words: Words) -> list[str]:
        return list(words.plural_forms(key)) if key in words.plural_keys else [words[key]]

    fields = {lang: {fields_of(text) for text in texts(CATALOGUE[lang])} for lang in CATALOGUE.languages}
    assert all(len(f) == 1 for f in fields.values()), fields  # a plural's forms agree too
    assert len({frozenset(next(iter(f))) for f in fields.values()}) == 1, fields


def test_no_key_is_dead_and_templates_name_only_keys() -> None:
    code, pages = source_text()
    for pattern in BUILT:
        assert pattern in code, f"the code no longer builds keys with {pattern}: update BUILT"
    built = set().union(*BUILT.values())
    used = {key for key in CATALOGUE.keys
            if key in built or re.search(rf"""["']{key}["']""", code + pages) or re.search(rf"\.{key}\b", pages)}
    assert sorted(CATALOGUE.keys - used - AWAITING) == [], "words nothing shows: remove them from every .po"
    assert sorted(AWAITING & used) == [], "used now: take them out of AWAITING"
    named = set(re.findall(r"\bt\.([a-z_]+)", pages)) | set(re.findall(r"words\([^)]*\)\.([a-z_]+)", pages))
    assert sorted(named - CATALOGUE.keys - WORDS_METHODS) == []


def words(language: str, texts: dict[str, str], plurals: dict[str, tuple[str, ...]] | None = None) -> Words:
    from feeds.core.i18n import Plural
    return Words(language, texts, {k: Plural(v, lambda n: int(n != 1)) for k, v in (plurals or {}).items()})


@pytest.mark.parametrize(("tables", "problem"), [
    pytest.param({"ko": {"a": "가", "b": "나"}, "en": {"a": "A"}}, "en: b: missing", id="missing"),
    pytest.param({"ko": {"a": "{site} 가"}, "en": {"a": "A {name}"}}, "a: fields differ: ko ['site']; en ['name']",
                 id="fields"),
    pytest.param({"ko": {"a": "{site:,} 가"}, "en": {"a": "A {site}"}}, None, id="format spec is the same field"),
])
def test_check_names_what_disagrees(tables: dict[str, dict[str, str]], problem: str | None) -> None:
    problems = check({lang: words(lang, texts) for lang, texts in tables.items()})
    assert problems == ([problem] if problem else [])
    if problem:
        with pytest.raises(CatalogueError, match=re.escape(problem)):
            Catalogue({lang: words(lang, texts) for lang, texts in tables.items()})


def test_check_compares_plural_forms() -> None:
    problems = check({"ko": words("ko", {}, {"n": ("{count}개",)}),
                      "en": words("en", {}, {"n": ("{count} thing", "one")}), "fr": words("fr", {"n": "x"})})
    assert problems == ["fr: n: missing plural forms", "n: fields differ: ko[0] ['count']; en[0] ['count']; en[1] []"]


PO = '''msgid ""
msgstr ""
"Language: {lang}\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgid "hello"
msgstr "{hello}"

{extra}
'''


@pytest.mark.parametrize(("extra", "problem"), [
    pytest.param('#, fuzzy\nmsgid "bye"\nmsgstr "bye"', "en: bye: missing", id="fuzzy is not translated"),
    pytest.param('msgid "bye"\nmsgstr ""', "en: bye: missing", id="empty is not translated"),
])
def test_load_refuses_untranslated_words(tmp_path: Path, extra: str, problem: str) -> None:
    for lang, hello, more in (("ko", "안녕", 'msgid "bye"\nmsgstr "잘 가"'), ("en", "hello", extra)):
        path = tmp_path / lang / "LC_MESSAGES" / "gazette.po"
        path.parent.mkdir(parents=True)
        path.write_text(PO.format(lang=lang, hello=hello, extra=more))
    with pytest.raises(CatalogueError, match=problem):
        Catalogue.load(tmp_path)


def test_load_needs_the_default_language(tmp_path: Path) -> None:
    path = tmp_path / "en" / "LC_MESSAGES" / "gazette.po"
    path.parent.mkdir(parents=True)
    path.write_text(PO.format(lang="en", hello="hello", extra=""))
    with pytest.raises(CatalogueError, match="ko/LC_MESSAGES/gazette.po"):
        Catalogue.load(tmp_path)


@pytest.mark.parametrize(("requested", "stored", "site", "expected"), [
    pytest.param("en", "ko", "ko", "en", id="asked for wins"),
    pytest.param(None, "en", "ko", "en", id="else the reader's stored language"),
    pytest.param(None, None, "en", "en", id="else the site's"),
    pytest.param("fr", None, "en", "en", id="an unknown request is skipped"),
    pytest.param("", "de", "en", "en", id="an empty request and an unknown stored one are skipped"),
    pytest.param(None, None, "ja", "ko", id="else Korean"),
    pytest.param("EN", None, "ko", "ko", id="codes are exact"),
])
def test_pick_language(requested: str | None, stored: str | None, site: str, expected: str) -> None:
    assert CATALOGUE.pick_language(requested, stored, site) == expected
    assert messages.pick_language(requested, stored, site) == expected
    assert pick_language(("ko", "en"), requested, stored, site) == expected


@pytest.mark.parametrize(("language", "n", "expected"), [
    ("ko", 1, "조회 1"), ("ko", 12345, "조회 12,345"),
    ("en", 0, "0 views"), ("en", 1, "1 view"), ("en", 2, "2 views"), ("en", 12345, "12,345 views"),
])
def test_counts_take_the_language_plural(language: str, n: int, expected: str) -> None:
    assert CATALOGUE.count(language, "digest_views", n) == expected


def test_words_fill_fields_and_format_dates() -> None:
    assert CATALOGUE.text("en", "confirm_subject", site="Hanbit") == "[Hanbit] Please confirm your subscription"
    assert messages.TEXT["ko"]["home"] == "처음으로" and "fr" not in messages.TEXT
    moment = datetime(2026, 3, 5, 7, 0, tzinfo=ZoneInfo("Asia/Seoul"))
    assert (CATALOGUE["ko"].date(moment), CATALOGUE["en"].date(moment)) == ("2026년 3월 5일", "March 5, 2026")


def test_templates_get_words_in_any_language() -> None:
    env = templates.environment()
    page = env.from_string("{{ words(lang).home }}")
    assert [page.render(lang=lang) for lang in ("ko", "en", "fr", None)] == ["처음으로", "Home", "처음으로", "처음으로"]

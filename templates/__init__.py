"""Jinja2 templates for web pages (pages/) and mails (email/), and the words they show (locale/).

A package only so that the templates and catalogues install beside the code; `directory()` says where they are.
`CATALOGUE` is every language's words (locale/<lang>/LC_MESSAGES/gazette.po, see `feeds.core.i18n`), read once
when this package is imported: a broken catalogue stops the service at start. `environment()` is the one Jinja
environment setup, with `words(lang)` as a global so any template can show words in its language (pages that get
a language's table as `t` use that).
"""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from feeds.core.i18n import Catalogue, Words


def directory() -> Path:
    return Path(__file__).resolve().parent


CATALOGUE = Catalogue.load(directory() / "locale")


def environment() -> Environment:
    """The templates' environment: HTML autoescaped, block lines trimmed (the text mails rely on it), `words`."""
    env = Environment(loader=FileSystemLoader(directory()), autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.globals["words"] = words
    return env


def words(language: str | None) -> Words:
    """The words of `language`, or of the first language when there is no catalogue for it (`pick_language`'s rule).
    """
    return CATALOGUE.words(CATALOGUE.pick_language(language, None, None))

"""Settings: one TOML file plus GAZETTE_<SECTION>_<KEY> environment overrides, validated once.

`load_settings()` returns an immutable `Settings` that the service passes to whatever needs it; nothing
reads the file or the environment anywhere else. Every problem raises `ConfigError` naming the key as the
user wrote it (`sources[2].interval`, `GAZETTE_DATABASE_URL`) and the reason.

It lives in `feeds` because `feeds` is the lower layer: `newsletter` may import it, not the other way round.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from .core.errors import ConfigError

log = logging.getLogger(__name__)

SOURCE_KINDS = ("feed", "html", "jsonl")
MAIL_SCHEMES = ("maildir", "smtp", "smtp+starttls", "smtps")
LANGUAGES = ("ko", "en")
FREQUENCIES = ("daily", "weekly")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESERVED_FEED_SLUGS = frozenset({"all", "popular"})
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_BARE_ADDRESS = re.compile(r"^[A-Za-z0-9._%-]{1,20}@(?:(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}|localhost)$")
_HOST = re.compile(r"^(?:\*\.)?(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$")
_COMPLAINT_SENDER = re.compile(r"^(?:[A-Za-z0-9._%+-]+)?@[A-Za-z0-9.-]+$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class SiteSettings:
    name: str
    base_url: str
    timezone: ZoneInfo
    language: str
    privacy_url: str | None = None  # the privacy policy (개인정보 처리방침), linked from every form and mail


@dataclass(frozen=True)
class MailSettings:
    url: str
    from_address: str
    reply_to: str | None
    postal_address: str
    dkim_selector: str | None
    dkim_key_file: Path | None
    rate_per_second: float
    concurrency: int
    unsubscribe_address: str = ""  # the mailto: of List-Unsubscribe; default unsubscribe@ the From domain
    bounce_folder: Path | None = None  # a maildir where DSNs, complaints and mailto unsubscribes arrive
    hard_bounce_limit: int = 3
    retries: int = 4  # transient failures (4xx, dropped connection) are tried again this many times
    retry_delay: timedelta = timedelta(seconds=30)  # the first wait; doubled each time
    return_path: str = "bounce@localhost"  # the envelope sender; each message's signed tag goes after a "+" (VERP)
    complaint_senders: tuple[str, ...] = ()  # feedback loops (addresses or @domains) whose reports need no tag
    welcome: bool = False  # a welcome mail when a reader confirms

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def maildir_path(self) -> Path:
        """The folder of a `maildir://` URL: `maildir://var/outbox` is relative, `maildir:///srv/out` absolute."""
        return Path(self.url.split("://", 1)[1])


@dataclass(frozen=True)
class FeedSettings:
    items: int
    full_content: bool
    max_age: int
    refresh: timedelta = timedelta(seconds=2)
    hubs: tuple[str, ...] = ()
    per_feed: Mapping[str, FeedOverride] = field(default_factory=dict)

    def items_for(self, slug: str) -> int:
        override = self.per_feed.get(slug)
        return override.items if override and override.items is not None else self.items

    def full_content_for(self, slug: str) -> bool:
        override = self.per_feed.get(slug)
        return override.full_content if override and override.full_content is not None else self.full_content


@dataclass(frozen=True)
class FeedOverride:
    """One feed's own item count and full-content choice; None keeps the [feeds] default."""

    items: int | None = None
    full_content: bool | None = None


@dataclass(frozen=True)
class FetchSettings:
    timeout: timedelta
    deadline: timedelta
    max_bytes: int
    workers: int
    host_concurrency: int
    host_delay: float
    failure_limit: int
    parse_processes: int = 2
    tracking_parameters: tuple[str, ...] = ()  # query parameters dropped from URLs besides utm_*, fbclid, gclid, …


@dataclass(frozen=True)
class ViewSettings:
    dedupe: timedelta = timedelta(minutes=30)
    per_ip_cap: int = 20
    flush_interval: timedelta = timedelta(seconds=1)
    flush_events: int = 1000
    max_age: timedelta = timedelta(days=7)
    popular_window: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class LogSettings:
    level: str | None = None  # None: the command's own default (WARNING; INFO for `serve`)
    format: str = "text"  # or "json": one object per line


@dataclass(frozen=True)
class Category:
    slug: str
    name: str


@dataclass(frozen=True)
class SourceSettings:
    name: str
    kind: str
    url: str | None
    path: Path | None
    interval: timedelta
    category: str | None
    category_map: Mapping[str, str]
    allow_private_network: bool = False  # an intranet CMS: its addresses may be private
    allow_hosts: tuple[str, ...] = ()  # hosts besides its own site that its content may lead to (a CDN, a new domain)
    wall_clock_zone: str | None = None  # it prints this zone's wall-clock time, whatever offset it writes (KST as Z)

    @property
    def location(self) -> str:
        return self.url if self.url is not None else str(self.path)


@dataclass(frozen=True)
class PartnerSettings:
    slug: str
    name: str
    key: str | None
    categories: tuple[str, ...]
    full_content: bool
    include_images: bool = True
    embargo_minutes: int = 0
    utm: Mapping[str, str] | None = None  # None: utm_source=<slug>, utm_medium=syndication
    attribution: str | None = None  # None: a line naming the site, in its language
    callback_url: str | None = None
    callback_secret: str | None = None
    rate_limit: int = 60  # requests per minute; 0 = no limit


@dataclass(frozen=True)
class EditionSettings:
    name: str
    schedule: str
    window: timedelta
    max_articles: int
    most_viewed: int
    has_ads: bool = False  # "(광고)" in the subject, only to readers who consented to advertising, never 21:00-08:00
    label: Mapping[str, str] = field(default_factory=dict)  # language -> the name readers choose on the forms
    description: Mapping[str, str] = field(default_factory=dict)  # language -> one line under it

    def trigger(self, timezone: ZoneInfo) -> CronTrigger:
        return CronTrigger.from_crontab(self.schedule, timezone=timezone)

    def label_in(self, language: str) -> str:
        return self.label.get(language) or next(iter(self.label.values()), self.name)

    def description_in(self, language: str) -> str:
        return self.description.get(language) or next(iter(self.description.values()), "")


@dataclass(frozen=True)
class Settings:
    site: SiteSettings
    database_url: str
    mail: MailSettings
    feeds: FeedSettings
    signing_key: str
    admin_token: str | None
    categories: tuple[Category, ...]
    sources: tuple[SourceSettings, ...]
    partners: tuple[PartnerSettings, ...]
    digests: tuple[EditionSettings, ...]
    scheduler_lease_ttl: timedelta = timedelta(seconds=30)
    fetch: FetchSettings = FetchSettings(timeout=timedelta(seconds=20), deadline=timedelta(seconds=60),
                                         max_bytes=10 * 1024 * 1024, workers=4, host_concurrency=2, host_delay=0.5,
                                         failure_limit=5)
    views: ViewSettings = ViewSettings()
    logging: LogSettings = LogSettings()
    path: Path | None = field(default=None, compare=False)

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def source(self, name: str) -> SourceSettings | None:
        return next((s for s in self.sources if s.name == name), None)

    def edition(self, name: str) -> EditionSettings | None:
        return next((e for e in self.digests if e.name == name), None)


def parse_duration(text: str) -> timedelta:
    """'10m', '1h30m', '7d', '45s' -> timedelta. Raises ValueError on anything else or on zero."""
    compact = text.strip().lower()
    matches = list(_DURATION_RE.finditer(compact))
    if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != compact.replace(" ", ""):
        raise ValueError(f'"{text}" is not a duration such as "30s", "10m", "1h30m" or "7d"')
    seconds = sum(int(m.group(1)) * _DURATION_UNITS[m.group(2)] for m in matches)
    if seconds <= 0:
        raise ValueError(f'"{text}" must be longer than zero')
    return timedelta(seconds=seconds)


# --- the schema -------------------------------------------------------------------------------------
# Each table section maps key -> (type, default). REQUIRED marks a key without a default.

REQUIRED = object()
_Spec = Mapping[str, tuple[type | tuple[type, ...], Any]]

_SECTIONS: dict[str, _Spec] = {
    "site": {
        "name": (str, "Gazette"),
        "base_url": (str, "http://127.0.0.1:8000"),
        "timezone": (str, "Asia/Seoul"),
        "language": (str, "ko"),
        "privacy_url": (str, None),
    },
    "database": {"url": (str, "sqlite:///var/gazette.db")},
    "mail": {
        "url": (str, "maildir://var/outbox"),
        "from": (str, "Gazette <newsletter@localhost>"),
        "reply_to": (str, None),
        "postal_address": (str, ""),
        "dkim_selector": (str, None),
        "dkim_key_file": (str, None),
        "rate_per_second": ((int, float), 50.0),
        "concurrency": (int, 4),
        "unsubscribe_address": (str, None),
        "bounce_folder": (str, None),
        "hard_bounce_limit": (int, 3),
        "retries": (int, 4),
        "retry_delay": (str, "30s"),
        "return_path": (str, None),
        "complaint_senders": (list, []),
        "welcome": (bool, False),
    },
    "feeds": {"items": (int, 50), "full_content": (bool, True), "max_age": (int, 300), "refresh": (str, "2s"),
              "hubs": (list, []), "per_feed": (dict, {})},
    "secrets": {"signing_key": (str, REQUIRED)},
    "admin": {"token": (str, None)},
    "scheduler": {"lease_ttl": (str, "30s")},
    "views": {
        "dedupe": (str, "30m"),
        "per_ip_cap": (int, 20),
        "flush_interval": (str, "1s"),
        "flush_events": (int, 1000),
        "max_age": (str, "7d"),
        "popular_window": (str, "24h"),
    },
    "fetch": {
        "timeout": (str, "20s"),
        "deadline": (str, "60s"),
        "max_bytes": (int, 10 * 1024 * 1024),
        "workers": (int, 4),
        "host_concurrency": (int, 2),
        "host_delay": ((int, float), 0.5),
        "failure_limit": (int, 5),
        "parse_processes": (int, 2),
        "tracking_parameters": (list, []),
    },
    "logging": {"level": (str, None), "format": (str, "text")},
}
_CATEGORY: _Spec = {"slug": (str, REQUIRED), "name": (str, REQUIRED)}
_FEED_OVERRIDE: _Spec = {"items": (int, None), "full_content": (bool, None)}
_SOURCE: _Spec = {
    "name": (str, REQUIRED),
    "kind": (str, REQUIRED),
    "url": (str, None),
    "path": (str, None),
    "interval": (str, "10m"),
    "category": (str, None),
    "category_map": (dict, None),
    "allow_private_network": (bool, False),
    "allow_hosts": (list, []),
    "wall_clock_zone": (str, None),
}
_PARTNER: _Spec = {
    "slug": (str, REQUIRED),
    "name": (str, REQUIRED),
    "key": (str, None),
    "categories": (list, REQUIRED),
    "full_content": (bool, True),
    "include_images": (bool, True),
    "embargo_minutes": (int, 0),
    "utm": (dict, None),
    "attribution": (str, None),
    "callback_url": (str, None),
    "callback_secret": (str, None),
    "rate_limit": (int, 60),
}
_EDITION: _Spec = {
    "schedule": (str, REQUIRED),
    "window": (str, None),
    "max_articles": (int, 30),
    "most_viewed": (int, 5),
    "ad": (bool, None),
    "ads": (bool, None),  # the name before the contract said `ad`; still read
    "label": ((str, dict), None),
    "description": ((str, dict), None),
}
_DEFAULT_EDITIONS = {
    "daily": {"schedule": "0 7 * * *", "window": "24h",
              "label": {"ko": "매일 아침", "en": "Every morning"},
              "description": {"ko": "매일 오전 7시, 지난 하루의 주요 기사", "en": "The day's main stories at 7 a.m."}},
    "weekly": {"schedule": "0 8 * * mon", "window": "7d",
               "label": {"ko": "매주 월요일", "en": "Every Monday"},
               "description": {"ko": "월요일 오전 8시, 한 주의 주요 기사", "en": "The week's main stories, Mondays at 8 a.m."}},
}
_ARRAYS = {"categories": _CATEGORY, "sources": _SOURCE, "partners": _PARTNER}
_TOP_LEVEL = set(_SECTIONS) | set(_ARRAYS) | {"digests"}
_ENV_NOT_SETTINGS = {"GAZETTE_CONFIG"}  # read by config_path, not a key
# Short names of the [logging] keys, as operators write them; the generic GAZETTE_LOGGING_* names work too.
_ENV_ALIASES = {"GAZETTE_LOG_LEVEL": "GAZETTE_LOGGING_LEVEL", "GAZETTE_LOG_FORMAT": "GAZETTE_LOGGING_FORMAT"}


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """--config, else $GAZETTE_CONFIG, else ./gazette.toml."""
    return Path(explicit or environ.get("GAZETTE_CONFIG") or "gazette.toml")


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such configuration file (use --config or $GAZETTE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return replace(build_settings(apply_environment(raw, environ)), path=path)


def apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay GAZETTE_<SECTION>_<KEY> variables on the scalar keys of the table sections.

    Only names that begin with a known section are settings. Any other GAZETTE_* name (a test's
    GAZETTE_TEST_POSTGRES_URL, another tool's variable) is not ours to refuse: it is ignored with a debug note.
    A known section with an unknown key (GAZETTE_DATABASE_URLL) stays an error, because that is a typo in a real
    setting: ignoring it would run on the file's value while the operator believes the override is in force.
    """
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for name in sorted(environ):  # sorted: with several mistakes, the same one is reported every time
        if not name.startswith("GAZETTE_") or name in _ENV_NOT_SETTINGS:
            continue
        value = environ[name]
        generic = _ENV_ALIASES.get(name, name)
        if generic != name and environ.get(generic, value) != value:
            raise ConfigError(name, f"says {value!r} but {generic} says {environ[generic]!r}: set one of them")
        match = _match_override(generic)
        if match is None:
            log.debug("%s is not a setting (there is no section [%s]): ignored", name,
                      generic[len("GAZETTE_"):].split("_")[0].lower())
            continue
        section, key = match
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(section, "must be a table")
        target[key] = _coerce(name, value, _SECTIONS[section][key][0])
    return merged


def _match_override(name: str) -> tuple[str, str] | None:
    """(section, key) of a GAZETTE_<SECTION>_<KEY> name; None when it names no section; ConfigError for a known
    section's unknown key, or a key the environment cannot set."""
    rest = name[len("GAZETTE_"):].lower()
    for section in (*_SECTIONS, *_ARRAYS, "digests"):
        if not rest.startswith(section + "_"):
            continue
        key = rest[len(section) + 1:]
        if section not in _SECTIONS:
            where = f"[{section}.*]" if section == "digests" else f"[[{section}]]"
            raise ConfigError(name, f"{where} is set in the configuration file only")
        spec = _SECTIONS[section]
        if key not in spec:
            raise ConfigError(name, f'unknown key "{key}" of [{section}] (known: {", ".join(spec)})')
        if spec[key][0] in (list, dict):
            raise ConfigError(name, f"{section}.{key} is {_TYPE_NAMES[spec[key][0]]}: set it in the configuration file")
        return section, key
    return None


def _coerce(name: str, value: str, expected: type | tuple[type, ...]) -> Any:
    types = expected if isinstance(expected, tuple) else (expected,)
    if bool in types:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f'"{value}" is not a boolean (true or false)')
    if int in types and float not in types:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(name, f'"{value}" is not a whole number') from None
    if float in types:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(name, f'"{value}" is not a number') from None
    return value


def _table(where: str, raw: Any, spec: _Spec) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a table")
    for key in raw:
        if key not in spec:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(spec)})")
    values: dict[str, Any] = {}
    for key, (kind, default) in spec.items():
        if key not in raw:
            if default is REQUIRED:
                raise ConfigError(f"{where}.{key}", "is required")
            values[key] = default
            continue
        value = raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a `true` where a number belongs is still a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise ConfigError(f"{where}.{key}", f"must be {names}, not {_TYPE_NAMES.get(type(value), type(value).__name__)}")
        values[key] = value
    return values


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "a boolean (true/false)",
               list: "an array", dict: "a table"}


def _check(key: str, ok: bool, reason: str) -> None:
    if not ok:
        raise ConfigError(key, reason)


def _convert(key: str, value: str, fn: Callable[[str], Any]) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from exc


def build_settings(raw: Mapping[str, Any]) -> Settings:
    for key in raw:
        if key not in _TOP_LEVEL:
            raise ConfigError(key, f"unknown section (known: {', '.join(sorted(_TOP_LEVEL))})")
    sec = {name: _table(name, raw.get(name, {}), spec) for name, spec in _SECTIONS.items()}

    site = _build_site(sec["site"])
    database_url = sec["database"]["url"]
    _check("database.url", database_url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")),
           'must start with "sqlite:///" or "postgresql://"')
    mail = _build_mail(sec["mail"])
    feeds = _build_feeds(sec["feeds"])
    signing_key = sec["secrets"]["signing_key"]
    _check("secrets.signing_key", len(signing_key) >= 16, "must be at least 16 characters (a long random string)")
    admin_token = sec["admin"]["token"]
    _check("admin.token", admin_token is None or len(admin_token) >= 16, "must be at least 16 characters")

    lease_ttl = _convert("scheduler.lease_ttl", sec["scheduler"]["lease_ttl"], parse_duration)
    _check("scheduler.lease_ttl", lease_ttl >= timedelta(seconds=1), "must be at least 1s")

    fetch = _build_fetch(sec["fetch"])
    v = sec["views"]
    views = ViewSettings(dedupe=_convert("views.dedupe", v["dedupe"], parse_duration), per_ip_cap=v["per_ip_cap"],
                         flush_interval=_convert("views.flush_interval", v["flush_interval"], parse_duration),
                         flush_events=v["flush_events"], max_age=_convert("views.max_age", v["max_age"], parse_duration),
                         popular_window=_convert("views.popular_window", v["popular_window"], parse_duration))
    _check("views.per_ip_cap", views.per_ip_cap >= 1, "must be at least 1")
    _check("views.flush_events", views.flush_events >= 1, "must be at least 1")
    log_settings = _build_logging(sec["logging"])

    categories = _build_categories(raw.get("categories", []))
    known = {c.slug for c in categories}
    for slug in feeds.per_feed:
        _check(f"feeds.per_feed.{slug}", slug in known | RESERVED_FEED_SLUGS,
               f'"{slug}" is not a feed (a category slug, "all" or "popular")')
    sources = _build_sources(raw.get("sources", []), known)
    partners = _build_partners(raw.get("partners", []), known)
    digests = _build_digests(raw.get("digests", {}), site.timezone)
    return Settings(site=site, database_url=database_url, mail=mail, feeds=feeds, signing_key=signing_key,
                    admin_token=admin_token, categories=categories, sources=sources, partners=partners,
                    digests=digests, scheduler_lease_ttl=lease_ttl, fetch=fetch, views=views,
                    logging=log_settings)


def _build_site(v: dict[str, Any]) -> SiteSettings:
    try:
        timezone = ZoneInfo(v["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("site.timezone", f'"{v["timezone"]}" is not a known time zone such as "Asia/Seoul"') from None
    _check("site.language", v["language"] in LANGUAGES, f"must be one of {', '.join(LANGUAGES)}")
    parts = urlsplit(v["base_url"])
    _check("site.base_url", parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.query,
           "must be an absolute http(s) URL such as https://news.example.com")
    _check("site.name", bool(v["name"].strip()), "must not be empty")
    if v["privacy_url"] is not None:
        privacy = urlsplit(v["privacy_url"])
        _check("site.privacy_url", privacy.scheme in ("http", "https") and bool(privacy.netloc),
               "must be an absolute http(s) URL of the privacy policy")
    return SiteSettings(name=v["name"].strip(), base_url=v["base_url"].rstrip("/"), timezone=timezone,
                        language=v["language"], privacy_url=v["privacy_url"])


def _build_logging(v: dict[str, Any]) -> LogSettings:
    level = v["level"].upper() if v["level"] is not None else None
    _check("logging.level", level is None or level in LOG_LEVELS, f'"{v["level"]}" is not one of {", ".join(LOG_LEVELS)}')
    _check("logging.format", v["format"] in LOG_FORMATS, f'"{v["format"]}" is not one of {", ".join(LOG_FORMATS)}')
    return LogSettings(level=level, format=v["format"])


def _build_feeds(v: dict[str, Any]) -> FeedSettings:
    _check("feeds.items", 1 <= v["items"] <= 1000, "must be between 1 and 1000")
    _check("feeds.max_age", v["max_age"] >= 0, "must not be negative")
    for i, hub in enumerate(v["hubs"]):
        parts = urlsplit(hub) if isinstance(hub, str) else None
        _check(f"feeds.hubs[{i}]", parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc),
               "must be the http(s) URL of a WebSub hub")
    per_feed = {}
    for slug, table in v["per_feed"].items():
        o = _table(f"feeds.per_feed.{slug}", table, _FEED_OVERRIDE)
        _check(f"feeds.per_feed.{slug}.items", o["items"] is None or 1 <= o["items"] <= 1000, "must be between 1 and 1000")
        per_feed[slug] = FeedOverride(items=o["items"], full_content=o["full_content"])
    return FeedSettings(items=v["items"], full_content=v["full_content"], max_age=v["max_age"],
                        refresh=_convert("feeds.refresh", v["refresh"], parse_duration), hubs=tuple(v["hubs"]),
                        per_feed=per_feed)


def _build_fetch(v: dict[str, Any]) -> FetchSettings:
    timeout = _convert("fetch.timeout", v["timeout"], parse_duration)
    deadline = _convert("fetch.deadline", v["deadline"], parse_duration)
    _check("fetch.deadline", deadline >= timeout, "must not be shorter than fetch.timeout")
    _check("fetch.max_bytes", 1024 <= v["max_bytes"] <= 1024 ** 3, "must be between 1024 and 1073741824")
    _check("fetch.workers", 1 <= v["workers"] <= 64, "must be between 1 and 64")
    _check("fetch.host_concurrency", 1 <= v["host_concurrency"] <= 64, "must be between 1 and 64")
    _check("fetch.host_delay", 0 <= v["host_delay"] <= 60, "must be between 0 and 60 seconds")
    _check("fetch.failure_limit", 1 <= v["failure_limit"] <= 100, "must be between 1 and 100")
    _check("fetch.parse_processes", 0 <= v["parse_processes"] <= 64, "must be between 0 and 64")
    for i, name in enumerate(v["tracking_parameters"]):
        _check(f"fetch.tracking_parameters[{i}]", isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name)),
               'must be a query parameter name such as "ref"')
    return FetchSettings(timeout=timeout, deadline=deadline, max_bytes=v["max_bytes"], workers=v["workers"],
                         host_concurrency=v["host_concurrency"], host_delay=float(v["host_delay"]),
                         failure_limit=v["failure_limit"], parse_processes=v["parse_processes"],
                         tracking_parameters=tuple(name.lower() for name in v["tracking_parameters"]))


def _build_mail(v: dict[str, Any]) -> MailSettings:
    scheme, sep, rest = v["url"].partition("://")
    _check("mail.url", bool(sep) and scheme in MAIL_SCHEMES and bool(rest),
           f"must be one of {', '.join(s + '://' for s in MAIL_SCHEMES)} followed by a path or host:port")
    if scheme != "maildir":
        parts = urlsplit(v["url"])
        _check("mail.url", bool(parts.hostname), "needs a host, as in smtp://mail.example.com:587")
        try:
            _ = parts.port  # urlsplit checks the port only when asked
        except ValueError:
            raise ConfigError("mail.url", "has a port that is not a number") from None
    _check("mail.rate_per_second", v["rate_per_second"] > 0, "must be above zero")
    _check("mail.concurrency", 1 <= v["concurrency"] <= 64, "must be between 1 and 64")
    for key in ("from", "reply_to"):
        if v[key] is not None:
            _check(f"mail.{key}", _is_mailbox(v[key]),
                   "must be an address such as 'Newsroom <news@example.com>' (put a name holding , ; : @ . or \" "
                   "in double quotes)")
    _check("mail.dkim_key_file", (v["dkim_selector"] is None) == (v["dkim_key_file"] is None),
           "dkim_selector and dkim_key_file go together")
    _check("mail.hard_bounce_limit", 1 <= v["hard_bounce_limit"] <= 100, "must be between 1 and 100")
    _check("mail.retries", 0 <= v["retries"] <= 20, "must be between 0 and 20")
    domain = parseaddr(v["from"])[1].rpartition("@")[2] or "localhost"
    unsubscribe = v["unsubscribe_address"] or f"unsubscribe@{domain}"
    _check("mail.unsubscribe_address", "@" in unsubscribe and not set(unsubscribe) & set("<> ,;\r\n"),
           "must be a bare address such as unsubscribe@example.com")
    return_path = v["return_path"] or f"bounce@{domain}"
    _check("mail.return_path", bool(_BARE_ADDRESS.match(return_path)) and "+" not in return_path,
           "must be a bare address such as bounce@example.com: no '+', a local part of at most 20 characters "
           "(each message adds +<tag>)")
    for i, sender in enumerate(v["complaint_senders"]):
        _check(f"mail.complaint_senders[{i}]", isinstance(sender, str) and bool(_COMPLAINT_SENDER.match(sender)),
               "must be an address (feedback@arf.mail.yahoo.com) or a domain as @domain (@hotmail.com)")
    key_file = Path(v["dkim_key_file"]) if v["dkim_key_file"] else None
    _check("mail.dkim_key_file", key_file is None or key_file.is_file(), f"{key_file} is not a readable file")
    return MailSettings(url=v["url"], from_address=v["from"], reply_to=v["reply_to"],
                        postal_address=v["postal_address"], dkim_selector=v["dkim_selector"], dkim_key_file=key_file,
                        rate_per_second=float(v["rate_per_second"]), concurrency=v["concurrency"],
                        unsubscribe_address=unsubscribe,
                        bounce_folder=Path(v["bounce_folder"]) if v["bounce_folder"] else None,
                        hard_bounce_limit=v["hard_bounce_limit"], retries=v["retries"],
                        retry_delay=_convert("mail.retry_delay", v["retry_delay"], parse_duration),
                        return_path=return_path,
                        complaint_senders=tuple(sender.lower() for sender in v["complaint_senders"]),
                        welcome=v["welcome"])


def _is_mailbox(value: str) -> bool:
    """One address, with or without a display name, that reads back as written (no group, no second address)."""
    if any(c in value for c in "\r\n\0"):
        return False
    if len(getaddresses([value])) != 1:
        return False
    name, address = parseaddr(value)
    written = value.split("<", 1)[0].strip().strip('"') if "<" in value else ""
    return "@" in address and " " not in address and (not written or bool(name))


def _array(name: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(name, f"must be an array of tables ([[{name}]])")
    return raw


def _build_categories(raw: Any) -> tuple[Category, ...]:
    out: list[Category] = []
    for i, item in enumerate(_array("categories", raw)):
        v = _table(f"categories[{i}]", item, _CATEGORY)
        _check(f"categories[{i}].slug", bool(SLUG_RE.match(v["slug"])),
               f'"{v["slug"]}" must be lowercase letters, digits and hyphens')
        _check(f"categories[{i}].slug", v["slug"] not in RESERVED_FEED_SLUGS, f'"{v["slug"]}" is reserved for a built-in feed')
        _check(f"categories[{i}].slug", v["slug"] not in {c.slug for c in out}, f'"{v["slug"]}" is defined twice')
        out.append(Category(slug=v["slug"], name=v["name"]))
    return tuple(out)


def _build_sources(raw: Any, categories: set[str]) -> tuple[SourceSettings, ...]:
    out: list[SourceSettings] = []
    for i, item in enumerate(_array("sources", raw)):
        where = f"sources[{i}]"
        v = _table(where, item, _SOURCE)
        _check(f"{where}.name", bool(v["name"].strip()), "must not be empty")
        _check(f"{where}.name", v["name"] not in {s.name for s in out}, f'"{v["name"]}" is used by another source')
        _check(f"{where}.kind", v["kind"] in SOURCE_KINDS, f'"{v["kind"]}" is not one of {", ".join(SOURCE_KINDS)}')
        _check(where, (v["url"] is None) != (v["path"] is None), "needs exactly one of url or path")
        if v["url"] is not None:
            parts = urlsplit(v["url"])
            _check(f"{where}.url", parts.scheme in ("http", "https") and bool(parts.netloc), "must be an http(s) URL")
        interval = _convert(f"{where}.interval", v["interval"], parse_duration)
        category_map = v["category_map"] or {}
        _check(where, v["category"] is not None or bool(category_map), "needs a category or a category_map")
        if v["category"] is not None:
            _check(f"{where}.category", v["category"] in categories, f'"{v["category"]}" is not a configured category')
        for upstream, slug in category_map.items():
            _check(f"{where}.category_map.{upstream}", isinstance(slug, str) and slug in categories,
                   f'"{slug}" is not a configured category')
        for j, host in enumerate(v["allow_hosts"]):
            _check(f"{where}.allow_hosts[{j}]", isinstance(host, str) and bool(_HOST.match(host)),
                   'must be a host name such as "cdn.example.com" (its subdomains are included)')
        if v["wall_clock_zone"] is not None:
            try:
                ZoneInfo(v["wall_clock_zone"])
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}.wall_clock_zone",
                                  f'"{v["wall_clock_zone"]}" is not a known time zone such as "Asia/Seoul"') from None
        out.append(SourceSettings(name=v["name"], kind=v["kind"], url=v["url"],
                                  path=Path(v["path"]) if v["path"] is not None else None, interval=interval,
                                  category=v["category"], category_map=dict(category_map),
                                  allow_private_network=v["allow_private_network"],
                                  allow_hosts=tuple(h.lower().lstrip("*").lstrip(".") for h in v["allow_hosts"]),
                                  wall_clock_zone=v["wall_clock_zone"]))
    return tuple(out)


def _build_partners(raw: Any, categories: set[str]) -> tuple[PartnerSettings, ...]:
    out: list[PartnerSettings] = []
    for i, item in enumerate(_array("partners", raw)):
        partner = build_partner(f"partners[{i}]", item, categories)
        _check(f"partners[{i}].slug", partner.slug not in {p.slug for p in out}, f'"{partner.slug}" is defined twice')
        out.append(partner)
    return tuple(out)


def build_partner(where: str, item: Any, categories: set[str]) -> PartnerSettings:
    """One `[[partners]]` table, validated; also how the CLI and the admin API check a partner they create."""
    v = _table(where, item, _PARTNER)
    _check(f"{where}.slug", bool(SLUG_RE.match(v["slug"])), f'"{v["slug"]}" must be lowercase letters, digits and hyphens')
    _check(f"{where}.name", bool(v["name"].strip()), "must not be empty")
    _check(f"{where}.categories", bool(v["categories"]), "must name at least one category (or \"all\")")
    for j, slug in enumerate(v["categories"]):
        _check(f"{where}.categories[{j}]", slug in categories or slug == "all", f'"{slug}" is not a configured category')
    _check(f"{where}.key", v["key"] is None or len(v["key"]) >= 16, "must be at least 16 characters")
    _check(f"{where}.embargo_minutes", 0 <= v["embargo_minutes"] <= 10080, "must be between 0 and 10080 (a week)")
    _check(f"{where}.rate_limit", 0 <= v["rate_limit"] <= 100_000, "must be between 0 (no limit) and 100000")
    for name, value in (v["utm"] or {}).items():
        _check(f"{where}.utm.{name}", name.startswith("utm_") and isinstance(value, str) and bool(value),
               'names start with "utm_" and values are non-empty strings, e.g. { utm_source = "portal" }')
    if v["callback_url"] is not None:
        parts = urlsplit(v["callback_url"])
        _check(f"{where}.callback_url", parts.scheme in ("http", "https") and bool(parts.netloc), "must be an http(s) URL")
        _check(f"{where}.callback_secret", v["callback_secret"] is not None, "is required with callback_url")
    _check(f"{where}.callback_secret", v["callback_secret"] is None or len(v["callback_secret"]) >= 16,
           "must be at least 16 characters")
    return PartnerSettings(slug=v["slug"], name=v["name"].strip(), key=v["key"], categories=tuple(v["categories"]),
                           full_content=v["full_content"], include_images=v["include_images"],
                           embargo_minutes=v["embargo_minutes"], utm=dict(v["utm"]) if v["utm"] is not None else None,
                           attribution=v["attribution"], callback_url=v["callback_url"],
                           callback_secret=v["callback_secret"], rate_limit=v["rate_limit"])


def _build_digests(raw: Any, timezone: ZoneInfo) -> tuple[EditionSettings, ...]:
    if not isinstance(raw, dict):
        raise ConfigError("digests", "must be a table of editions, as in [digests.daily]")
    tables = raw or _DEFAULT_EDITIONS
    out: list[EditionSettings] = []
    for name, item in tables.items():
        where = f"digests.{name}"
        _check(where, bool(SLUG_RE.match(name)), "an edition name must be lowercase letters, digits and hyphens")
        v = _table(where, item, _EDITION)
        try:
            CronTrigger.from_crontab(v["schedule"], timezone=timezone)
        except ValueError as exc:
            raise ConfigError(f"{where}.schedule", f'"{v["schedule"]}" is not a cron expression ({exc})') from None
        defaults: Mapping[str, Any] = _DEFAULT_EDITIONS.get(name, {})
        window = v["window"] or defaults.get("window", "24h")
        _check(f"{where}.ads", v["ad"] is None or v["ads"] is None, "give `ad` only (`ads` is its old name)")
        _check(f"{where}.max_articles", 1 <= v["max_articles"] <= 200, "must be between 1 and 200")
        _check(f"{where}.most_viewed", 0 <= v["most_viewed"] <= 50, "must be between 0 and 50")
        out.append(EditionSettings(name=name, schedule=v["schedule"],
                                   window=_convert(f"{where}.window", window, parse_duration),
                                   max_articles=v["max_articles"], most_viewed=v["most_viewed"],
                                   has_ads=bool(v["ad"] if v["ad"] is not None else v["ads"]),
                                   label=_words(f"{where}.label", v["label"] or defaults.get("label") or name),
                                   description=_words(f"{where}.description",
                                                      v["description"] or defaults.get("description") or "")))
    return tuple(out)


def _words(key: str, value: str | Mapping[str, Any]) -> Mapping[str, str]:
    """A text readers see: one string for every language, or a table of them (`{ko = "…", en = "…"}`)."""
    if isinstance(value, str):
        return {language: value.strip() for language in LANGUAGES} if value.strip() else {}
    unknown = [language for language in value if language not in LANGUAGES]
    _check(f"{key}.{unknown[0] if unknown else ''}", not unknown, f"not a language of the site ({', '.join(LANGUAGES)})")
    for language, text in value.items():
        _check(f"{key}.{language}", isinstance(text, str) and bool(text.strip()), "must be a non-empty string")
    return {language: text.strip() for language, text in value.items()}

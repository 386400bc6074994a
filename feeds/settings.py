"""The content side's settings and the sections both sides share, as frozen dataclasses.

Sections owned here: [site], [database], [secrets], [admin], [scheduler], [queue], [logging], [feeds], [fetch], [views],
[widgets], [webhooks] and
the arrays [[categories]], [[sources]], [[partners]]. The schemas are exported (`SECTIONS`, `ARRAYS`) so the audience
side's `newsletter.settings` can load one file holding both sides; [mail] and [digests] are declared there, and no
content-side code reads them. The loading machinery (TOML, the GAZETTE_<SECTION>_<KEY> overlay, schema checks) is
`feeds.core.config`.

`load_settings()` here reads a content-only file; the service loads through `newsletter.settings.load_settings()`.

Why it is long: it is the file's one schema and the one rule per table (`build_source` and `build_partner` are also
how the console and the API check what they store); split, a key's default and its check would live apart.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .core.config import (REQUIRED, Spec, apply_environment, array, check, check_top_level, convert, is_http_url,
                          parse_duration, read_config, table, time_zone, web_origin)

SOURCE_KINDS = ("feed", "html", "jsonl")
LANGUAGES = ("ko", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESERVED_FEED_SLUGS = frozenset({"all", "popular"})
MAX_SOURCE_NAME = 200  # the stored column's width
MAX_SOURCE_URL = 2048
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})  # control, bidi overrides, zero-width, surrogates
_HOST = re.compile(r"^(?:\*\.)?(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class SiteSettings:
    name: str
    base_url: str
    timezone: ZoneInfo
    language: str
    privacy_url: str | None = None  # the privacy policy (개인정보 처리방침), linked from every form and mail


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
class ConsoleSettings:
    """`[admin]`'s console keys: how long a session lasts unused (`session_idle`) and at most (`session_lifetime`)."""

    session_idle: timedelta = timedelta(hours=2)
    session_lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class QueueSettings:
    """[queue]: work spread over processes and machines, both optional. `url` (a RabbitMQ broker, amqp://) makes
    editions go out as Celery tasks of `batch_size` readers and source polls run on workers (`gazette worker`);
    `redis_url` moves what each process kept in memory (view dedupe, per-IP caps, rate limits, the mail rate) to
    one Redis, so that several `serve` workers and machines share it. Without either, all of it stays in-process."""

    url: str | None = None
    redis_url: str | None = None
    batch_size: int = 1000

    @property
    def is_distributed(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class WidgetSettings:
    """[widgets]: the embeddable boxes (`feeds.widgets`). `origins` may read the JSON (CORS) and frame the fragment."""

    origins: tuple[str, ...] = ()  # each "scheme://host[:port]", as a browser's Origin header writes it
    max_limit: int = 20
    refresh: timedelta = timedelta(seconds=30)  # a ranking is computed again when older than this
    max_age: int = 30  # Cache-Control max-age of the fragment and the JSON, in seconds


@dataclass(frozen=True)
class WebhookSettings:
    """[webhooks] (`feeds.webhooks`): private addresses only if the operator allows them; attempts before parking."""

    allow_private_network: bool = False
    max_attempts: int = 8


@dataclass(frozen=True)
class Settings:
    """The content side's settings and the shared sections; `newsletter.settings.Settings` adds [mail] and
    [digests]."""

    site: SiteSettings
    database_url: str
    feeds: FeedSettings
    signing_key: str
    admin_token: str | None
    categories: tuple[Category, ...]
    sources: tuple[SourceSettings, ...]
    partners: tuple[PartnerSettings, ...]
    scheduler_lease_ttl: timedelta = timedelta(seconds=30)
    # How often every process re-reads the sources stored in the database (added in the console or the API) and the
    # scheduler's holder re-syncs their ingest jobs.
    scheduler_reload: timedelta = timedelta(seconds=30)
    # Whether a source stored in the database may set allow_private_network: the file's operator decides, not an
    # editor (else the console's "test" would reach the local network for anyone who may edit sources).
    stored_sources_private_network: bool = False
    fetch: FetchSettings = FetchSettings(timeout=timedelta(seconds=20), deadline=timedelta(seconds=60),
                                         max_bytes=10 * 1024 * 1024, workers=4, host_concurrency=2, host_delay=0.5,
                                         failure_limit=5)
    views: ViewSettings = ViewSettings()
    logging: LogSettings = LogSettings()
    console: ConsoleSettings = ConsoleSettings()
    queue: QueueSettings = QueueSettings()
    widgets: WidgetSettings = WidgetSettings()
    webhooks: WebhookSettings = WebhookSettings()
    path: Path | None = field(default=None, compare=False)

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def source(self, name: str) -> SourceSettings | None:
        return next((s for s in self.sources if s.name == name), None)


# --- the schema -------------------------------------------------------------------------------------
# Each table section maps key -> (type, default); REQUIRED marks a key without a default.

SECTIONS: dict[str, Spec] = {
    "site": {"name": (str, "Gazette"), "base_url": (str, "http://127.0.0.1:8000"), "timezone": (str, "Asia/Seoul"),
             "language": (str, "ko"), "privacy_url": (str, None)},
    "database": {"url": (str, "sqlite:///var/gazette.db")},
    "feeds": {"items": (int, 50), "full_content": (bool, True), "max_age": (int, 300), "refresh": (str, "2s"),
              "hubs": (list, []), "per_feed": (dict, {})},
    "secrets": {"signing_key": (str, REQUIRED)},
    "admin": {"token": (str, None), "session_idle": (str, "2h"), "session_lifetime": (str, "12h"),
              "sources_private_network": (bool, False)},
    "scheduler": {"lease_ttl": (str, "30s"), "reload": (str, "30s")},
    "queue": {"url": (str, None), "redis_url": (str, None), "batch_size": (int, 1000)},
    "views": {"dedupe": (str, "30m"), "per_ip_cap": (int, 20), "flush_interval": (str, "1s"),
              "flush_events": (int, 1000), "max_age": (str, "7d"), "popular_window": (str, "24h")},
    "fetch": {"timeout": (str, "20s"), "deadline": (str, "60s"), "max_bytes": (int, 10 * 1024 * 1024),
              "workers": (int, 4), "host_concurrency": (int, 2), "host_delay": ((int, float), 0.5),
              "failure_limit": (int, 5), "parse_processes": (int, 2), "tracking_parameters": (list, [])},
    "logging": {"level": (str, None), "format": (str, "text")},
    "widgets": {"origins": (list, []), "max_limit": (int, 20), "refresh": (str, "30s"), "max_age": (int, 30)},
    "webhooks": {"allow_private_network": (bool, False), "max_attempts": (int, 8)},
}

_CATEGORY: Spec = {"slug": (str, REQUIRED), "name": (str, REQUIRED)}
_FEED_OVERRIDE: Spec = {"items": (int, None), "full_content": (bool, None)}
_SOURCE: Spec = {"name": (str, REQUIRED), "kind": (str, REQUIRED), "url": (str, None), "path": (str, None),
                 "interval": (str, "10m"), "category": (str, None), "category_map": (dict, None),
                 "allow_private_network": (bool, False), "allow_hosts": (list, []), "wall_clock_zone": (str, None)}
_PARTNER: Spec = {"slug": (str, REQUIRED), "name": (str, REQUIRED), "key": (str, None), "categories": (list, REQUIRED),
                  "full_content": (bool, True), "include_images": (bool, True), "embargo_minutes": (int, 0),
                  "utm": (dict, None), "attribution": (str, None), "callback_url": (str, None),
                  "callback_secret": (str, None), "rate_limit": (int, 60)}
ARRAYS: dict[str, Spec] = {"categories": _CATEGORY, "sources": _SOURCE, "partners": _PARTNER}
# Short names of the [logging] keys, as operators write them; the generic GAZETTE_LOGGING_* names work too.
ENV_ALIASES = {"GAZETTE_LOG_LEVEL": "GAZETTE_LOGGING_LEVEL", "GAZETTE_LOG_FORMAT": "GAZETTE_LOGGING_FORMAT"}
FILE_ONLY = {name: f"[[{name}]]" for name in ARRAYS}  # what the environment cannot set, as the file writes it


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """A content-only file (no [mail], no [digests]) plus the environment's overrides of its sections."""
    environ = os.environ if environ is None else environ
    raw = apply_environment(read_config(path), environ, SECTIONS, file_only=FILE_ONLY, aliases=ENV_ALIASES)
    return replace(build_settings(raw), path=path)


def build_settings(raw: Mapping[str, Any]) -> Settings:
    """The content side's `Settings` from the file's dict (environment overrides already applied)."""
    check_top_level(raw, set(SECTIONS) | set(ARRAYS))
    sec = {name: table(name, raw.get(name, {}), spec) for name, spec in SECTIONS.items()}

    site = _build_site(sec["site"])
    database_url = sec["database"]["url"]
    check("database.url", database_url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")),
          'must start with "sqlite:///" or "postgresql://"')
    feeds = _build_feeds(sec["feeds"])
    signing_key = sec["secrets"]["signing_key"]
    check("secrets.signing_key", len(signing_key) >= 16, "must be at least 16 characters (a long random string)")
    admin_token = sec["admin"]["token"]
    check("admin.token", admin_token is None or len(admin_token) >= 16, "must be at least 16 characters")

    console = ConsoleSettings(
        session_idle=convert("admin.session_idle", sec["admin"]["session_idle"], parse_duration),
        session_lifetime=convert("admin.session_lifetime", sec["admin"]["session_lifetime"], parse_duration))
    check("admin.session_idle", timedelta(minutes=1) <= console.session_idle <= console.session_lifetime,
          "must be at least 1m and at most admin.session_lifetime")
    check("admin.session_lifetime", console.session_lifetime <= timedelta(days=30), "must be at most 30d")

    lease_ttl = convert("scheduler.lease_ttl", sec["scheduler"]["lease_ttl"], parse_duration)
    check("scheduler.lease_ttl", lease_ttl >= timedelta(seconds=1), "must be at least 1s")
    reload = convert("scheduler.reload", sec["scheduler"]["reload"], parse_duration)

    queue = _build_queue(sec["queue"])
    fetch = _build_fetch(sec["fetch"])
    v = sec["views"]
    views = ViewSettings(dedupe=convert("views.dedupe", v["dedupe"], parse_duration), per_ip_cap=v["per_ip_cap"],
                         flush_interval=convert("views.flush_interval", v["flush_interval"], parse_duration),
                         flush_events=v["flush_events"], max_age=convert("views.max_age", v["max_age"], parse_duration),
                         popular_window=convert("views.popular_window", v["popular_window"], parse_duration))
    check("views.per_ip_cap", views.per_ip_cap >= 1, "must be at least 1")
    check("views.flush_events", views.flush_events >= 1, "must be at least 1")
    log_settings = _build_logging(sec["logging"])

    categories = _build_categories(raw.get("categories", []))
    known = {c.slug for c in categories}
    for slug in feeds.per_feed:
        check(f"feeds.per_feed.{slug}", slug in known | RESERVED_FEED_SLUGS,
              f'"{slug}" is not a feed (a category slug, "all" or "popular")')
    sources = _build_sources(raw.get("sources", []), known)
    partners = _build_partners(raw.get("partners", []), known)
    return Settings(site=site, database_url=database_url, feeds=feeds, signing_key=signing_key,
                    admin_token=admin_token, categories=categories, sources=sources, partners=partners,
                    scheduler_lease_ttl=lease_ttl, scheduler_reload=reload,
                    stored_sources_private_network=sec["admin"]["sources_private_network"], fetch=fetch, views=views,
                    logging=log_settings, console=console, queue=queue, widgets=_build_widgets(sec["widgets"]),
                    webhooks=_build_webhooks(sec["webhooks"]))


def _build_site(v: dict[str, Any]) -> SiteSettings:
    timezone = time_zone("site.timezone", v["timezone"])
    check("site.language", v["language"] in LANGUAGES, f"must be one of {', '.join(LANGUAGES)}")
    check("site.base_url", is_http_url(v["base_url"]) and not urlsplit(v["base_url"]).query,
          "must be an absolute http(s) URL such as https://news.example.com")
    check("site.name", bool(v["name"].strip()), "must not be empty")
    check("site.privacy_url", v["privacy_url"] is None or is_http_url(v["privacy_url"]),
          "must be an absolute http(s) URL of the privacy policy")
    return SiteSettings(name=v["name"].strip(), base_url=v["base_url"].rstrip("/"), timezone=timezone,
                        language=v["language"], privacy_url=v["privacy_url"])


def _build_queue(v: dict[str, Any]) -> QueueSettings:
    url, redis_url = v["url"], v["redis_url"]
    check("queue.url", url is None or urlsplit(url).scheme in ("amqp", "amqps") and bool(urlsplit(url).hostname),
          "must be a RabbitMQ address such as amqp://guest:guest@127.0.0.1:5672//")
    check("queue.redis_url", redis_url is None or urlsplit(redis_url).scheme in ("redis", "rediss", "unix"),
          "must be a Redis address such as redis://127.0.0.1:6379/0")
    check("queue.redis_url", url is None or redis_url is not None,
          "is needed with queue.url: the workers share the mail rate limit (a token bucket) there")
    check("queue.batch_size", 1 <= v["batch_size"] <= 100_000, "must be between 1 and 100000")
    return QueueSettings(url=url, redis_url=redis_url, batch_size=v["batch_size"])


def _build_webhooks(v: dict[str, Any]) -> WebhookSettings:
    check("webhooks.max_attempts", 1 <= v["max_attempts"] <= 50, "must be between 1 and 50")
    return WebhookSettings(**v)


def _build_widgets(v: dict[str, Any]) -> WidgetSettings:
    origins = tuple(convert(f"widgets.origins[{i}]", o, web_origin) for i, o in enumerate(v["origins"]))
    check("widgets.max_limit", 1 <= v["max_limit"] <= 50, "must be between 1 and 50")
    refresh = convert("widgets.refresh", v["refresh"], parse_duration)
    check("widgets.refresh", refresh <= timedelta(minutes=5), "must be at most 5m")
    check("widgets.max_age", 0 <= v["max_age"] <= 3600, "must be between 0 and 3600 seconds")
    return WidgetSettings(origins=origins, max_limit=v["max_limit"], refresh=refresh, max_age=v["max_age"])


def _build_logging(v: dict[str, Any]) -> LogSettings:
    level = v["level"].upper() if v["level"] is not None else None
    check("logging.level", level is None or level in LOG_LEVELS,
          f'"{v["level"]}" is not one of {", ".join(LOG_LEVELS)}')
    check("logging.format", v["format"] in LOG_FORMATS, f'"{v["format"]}" is not one of {", ".join(LOG_FORMATS)}')
    return LogSettings(level=level, format=v["format"])


def _build_feeds(v: dict[str, Any]) -> FeedSettings:
    check("feeds.items", 1 <= v["items"] <= 1000, "must be between 1 and 1000")
    check("feeds.max_age", v["max_age"] >= 0, "must not be negative")
    for i, hub in enumerate(v["hubs"]):
        check(f"feeds.hubs[{i}]", is_http_url(hub), "must be the http(s) URL of a WebSub hub")
    per_feed = {}
    for slug, entry in v["per_feed"].items():
        o = table(f"feeds.per_feed.{slug}", entry, _FEED_OVERRIDE)
        check(f"feeds.per_feed.{slug}.items", o["items"] is None or 1 <= o["items"] <= 1000,
              "must be between 1 and 1000")
        per_feed[slug] = FeedOverride(items=o["items"], full_content=o["full_content"])
    return FeedSettings(items=v["items"], full_content=v["full_content"], max_age=v["max_age"],
                        refresh=convert("feeds.refresh", v["refresh"], parse_duration), hubs=tuple(v["hubs"]),
                        per_feed=per_feed)


def _build_fetch(v: dict[str, Any]) -> FetchSettings:
    timeout = convert("fetch.timeout", v["timeout"], parse_duration)
    deadline = convert("fetch.deadline", v["deadline"], parse_duration)
    check("fetch.deadline", deadline >= timeout, "must not be shorter than fetch.timeout")
    check("fetch.max_bytes", 1024 <= v["max_bytes"] <= 1024 ** 3, "must be between 1024 and 1073741824")
    check("fetch.workers", 1 <= v["workers"] <= 64, "must be between 1 and 64")
    check("fetch.host_concurrency", 1 <= v["host_concurrency"] <= 64, "must be between 1 and 64")
    check("fetch.host_delay", 0 <= v["host_delay"] <= 60, "must be between 0 and 60 seconds")
    check("fetch.failure_limit", 1 <= v["failure_limit"] <= 100, "must be between 1 and 100")
    check("fetch.parse_processes", 0 <= v["parse_processes"] <= 64, "must be between 0 and 64")
    for i, name in enumerate(v["tracking_parameters"]):
        check(f"fetch.tracking_parameters[{i}]", isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name)),
              'must be a query parameter name such as "ref"')
    return FetchSettings(timeout=timeout, deadline=deadline, max_bytes=v["max_bytes"], workers=v["workers"],
                         host_concurrency=v["host_concurrency"], host_delay=float(v["host_delay"]),
                         failure_limit=v["failure_limit"], parse_processes=v["parse_processes"],
                         tracking_parameters=tuple(name.lower() for name in v["tracking_parameters"]))


def _build_categories(raw: Any) -> tuple[Category, ...]:
    out: list[Category] = []
    for i, item in enumerate(array("categories", raw)):
        v = table(f"categories[{i}]", item, _CATEGORY)
        check(f"categories[{i}].slug", bool(SLUG_RE.match(v["slug"])),
              f'"{v["slug"]}" must be lowercase letters, digits and hyphens')
        check(f"categories[{i}].slug", v["slug"] not in RESERVED_FEED_SLUGS,
              f'"{v["slug"]}" is reserved for a built-in feed')
        check(f"categories[{i}].slug", v["slug"] not in {c.slug for c in out}, f'"{v["slug"]}" is defined twice')
        out.append(Category(slug=v["slug"], name=v["name"]))
    return tuple(out)


def _build_sources(raw: Any, categories: set[str]) -> tuple[SourceSettings, ...]:
    out: list[SourceSettings] = []
    for i, item in enumerate(array("sources", raw)):
        source = build_source(f"sources[{i}]", item, categories)
        check(f"sources[{i}].name", source.name not in {s.name for s in out},
              f'"{source.name}" is used by another source')
        out.append(source)
    return tuple(out)


def build_source(where: str, item: Any, categories: set[str]) -> SourceSettings:
    """One `[[sources]]` table, validated; also how the console and the admin API check a source they store (the
    one rule for a source, whoever writes it). A ConfigError names the key, as `where.key`."""
    v = table(where, item, _SOURCE)
    check(f"{where}.name", bool(v["name"].strip()), "must not be empty")
    check(f"{where}.name", len(v["name"]) <= MAX_SOURCE_NAME, f"must be at most {MAX_SOURCE_NAME} characters")
    check(f"{where}.name", not any(unicodedata.category(c) in _INVISIBLE for c in v["name"]),
          "must not hold control or invisible formatting characters")
    check(f"{where}.kind", v["kind"] in SOURCE_KINDS, f'"{v["kind"]}" is not one of {", ".join(SOURCE_KINDS)}')
    check(where, (v["url"] is None) != (v["path"] is None), "needs exactly one of url or path")
    check(f"{where}.url", v["url"] is None or is_http_url(v["url"]), "must be an http(s) URL")
    check(f"{where}.url", v["url"] is None or len(v["url"]) <= MAX_SOURCE_URL,
          f"must be at most {MAX_SOURCE_URL} characters")
    interval = convert(f"{where}.interval", v["interval"], parse_duration)
    category_map = v["category_map"] or {}
    check(where, v["category"] is not None or bool(category_map), "needs a category or a category_map")
    if v["category"] is not None:
        check(f"{where}.category", v["category"] in categories, f'"{v["category"]}" is not a configured category')
    for upstream, slug in category_map.items():
        check(f"{where}.category_map.{upstream}", isinstance(slug, str) and slug in categories,
              f'"{slug}" is not a configured category')
    for j, host in enumerate(v["allow_hosts"]):
        check(f"{where}.allow_hosts[{j}]", isinstance(host, str) and bool(_HOST.match(host)),
              'must be a host name such as "cdn.example.com" (its subdomains are included)')
    if v["wall_clock_zone"] is not None:
        time_zone(f"{where}.wall_clock_zone", v["wall_clock_zone"])
    return SourceSettings(name=v["name"], kind=v["kind"], url=v["url"],
                          path=Path(v["path"]) if v["path"] is not None else None, interval=interval,
                          category=v["category"], category_map=dict(category_map),
                          allow_private_network=v["allow_private_network"],
                          allow_hosts=tuple(h.lower().lstrip("*").lstrip(".") for h in v["allow_hosts"]),
                          wall_clock_zone=v["wall_clock_zone"])


def _build_partners(raw: Any, categories: set[str]) -> tuple[PartnerSettings, ...]:
    out: list[PartnerSettings] = []
    for i, item in enumerate(array("partners", raw)):
        partner = build_partner(f"partners[{i}]", item, categories)
        check(f"partners[{i}].slug", partner.slug not in {p.slug for p in out}, f'"{partner.slug}" is defined twice')
        out.append(partner)
    return tuple(out)


def build_partner(where: str, item: Any, categories: set[str]) -> PartnerSettings:
    """One `[[partners]]` table, validated; also how the CLI and the admin API check a partner they create."""
    v = table(where, item, _PARTNER)
    check(f"{where}.slug", bool(SLUG_RE.match(v["slug"])),
          f'"{v["slug"]}" must be lowercase letters, digits and hyphens')
    check(f"{where}.name", bool(v["name"].strip()), "must not be empty")
    check(f"{where}.categories", bool(v["categories"]), "must name at least one category (or \"all\")")
    for j, slug in enumerate(v["categories"]):
        check(f"{where}.categories[{j}]", slug in categories or slug == "all", f'"{slug}" is not a configured category')
    check(f"{where}.key", v["key"] is None or len(v["key"]) >= 16, "must be at least 16 characters")
    check(f"{where}.embargo_minutes", 0 <= v["embargo_minutes"] <= 10080, "must be between 0 and 10080 (a week)")
    check(f"{where}.rate_limit", 0 <= v["rate_limit"] <= 100_000, "must be between 0 (no limit) and 100000")
    for name, value in (v["utm"] or {}).items():
        check(f"{where}.utm.{name}", name.startswith("utm_") and isinstance(value, str) and bool(value),
              'names start with "utm_" and values are non-empty strings, e.g. { utm_source = "portal" }')
    if v["callback_url"] is not None:
        check(f"{where}.callback_url", is_http_url(v["callback_url"]), "must be an http(s) URL")
        check(f"{where}.callback_secret", v["callback_secret"] is not None, "is required with callback_url")
    check(f"{where}.callback_secret", v["callback_secret"] is None or len(v["callback_secret"]) >= 16,
          "must be at least 16 characters")
    return PartnerSettings(slug=v["slug"], name=v["name"].strip(), key=v["key"], categories=tuple(v["categories"]),
                           full_content=v["full_content"], include_images=v["include_images"],
                           embargo_minutes=v["embargo_minutes"], utm=dict(v["utm"]) if v["utm"] is not None else None,
                           attribution=v["attribution"], callback_url=v["callback_url"],
                           callback_secret=v["callback_secret"], rate_limit=v["rate_limit"])

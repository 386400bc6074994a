"""The audience side's settings: [mail] (how mail leaves and how bounces come back) and [digests] (the editions
readers choose), and the `Settings` of the whole service.

`Settings` is `feeds.settings.Settings` plus `mail` and `digests`; newsletter code and the wiring use it, feeds code
uses the parent, which knows nothing of mail. `load_settings()` reads the one file both sides share: the known
sections, the GAZETTE_<SECTION>_<KEY> overlay and the unknown-section check cover both sides' sections. The
machinery is `feeds.core.config`; the content side's sections are `feeds.settings`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from feeds import settings as feeds_settings
from feeds.core.config import (REQUIRED, Spec, apply_environment, check, check_top_level, convert, parse_duration,
                               read_config, table, words)
from feeds.core.errors import ConfigError
from feeds.settings import LANGUAGES, SLUG_RE

from .push_keys import PushKeyError, public_key_of, read_vapid_key
from .signing import DkimError, KeyKind, is_selector, read_private_key, signing_domain

MAIL_SCHEMES = ("maildir", "smtp", "smtp+starttls", "smtps")
_BARE_ADDRESS = re.compile(r"^[A-Za-z0-9._%-]{1,20}@(?:(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}|localhost)$")
_COMPLAINT_SENDER = re.compile(r"^(?:[A-Za-z0-9._%+-]+)?@[A-Za-z0-9.-]+$")


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
    dkim_ed25519_selector: str | None = None  # a second signature, Ed25519-SHA256 (RFC 8463), beside the RSA one
    dkim_ed25519_key_file: Path | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def maildir_path(self) -> Path:
        """The folder of a `maildir://` URL: `maildir://var/outbox` is relative, `maildir:///srv/out` absolute."""
        return Path(self.url.split("://", 1)[1])


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


# The push services browsers subscribe with (Chrome and Edge's FCM, Firefox's autopush, Safari's, Windows'): an
# endpoint elsewhere is refused, so that nobody can make Gazette POST each alert to an address of their choosing.
PUSH_SERVICES = ("fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com", "notify.windows.com")


@dataclass(frozen=True)
class PushSettings:
    """[push]: breaking alerts by Web Push (RFC 8030, VAPID RFC 8292, aes128gcm RFC 8291). See docs/push.md."""

    vapid_private_key_file: Path  # the P-256 key `gazette push keys` wrote; read and checked at start
    vapid_public_key: str  # its public point, base64url (what the browser subscribes with)
    vapid_subject: str  # mailto: or https: — who the push services may contact about our traffic
    rate_per_second: float = 100.0
    concurrency: int = 8  # pushes waiting on push services at once, per run
    ttl: int = 86_400  # seconds a push service keeps an alert for a device that is offline
    retries: int = 3  # a 429, 5xx or a dropped connection is tried again this many times
    retry_delay: timedelta = timedelta(seconds=30)  # the first wait; doubled each time
    origins: tuple[str, ...] = ()  # pages (scheme://host[:port]) allowed to subscribe, besides [site] base_url's
    services: tuple[str, ...] = PUSH_SERVICES  # push service hosts (and their subdomains) an endpoint may be on
    allow_insecure_endpoints: bool = False  # tests and development only: http:// and private addresses as endpoints


@dataclass(frozen=True, kw_only=True)
class Settings(feeds_settings.Settings):
    """The whole service's settings: the content side's and the shared sections, plus [mail] and [digests]."""

    mail: MailSettings
    digests: tuple[EditionSettings, ...]
    push: PushSettings | None = None  # [push]: breaking alerts by Web Push; None (no section): push is off

    def edition(self, name: str) -> EditionSettings | None:
        return next((e for e in self.digests if e.name == name), None)


# --- the schema -------------------------------------------------------------------------------------
# As in feeds.settings: key -> (type, default); REQUIRED marks a key without a default.

MAIL: Spec = {
    "url": (str, "maildir://var/outbox"),
    "from": (str, "Gazette <newsletter@localhost>"),
    "reply_to": (str, None),
    "postal_address": (str, ""),
    "dkim_selector": (str, None),
    "dkim_key_file": (str, None),
    "dkim_ed25519_selector": (str, None),
    "dkim_ed25519_key_file": (str, None),
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
}
PUSH: Spec = {
    "vapid_private_key_file": (str, REQUIRED),
    "vapid_subject": (str, REQUIRED),
    "rate_per_second": ((int, float), 100.0),
    "concurrency": (int, 8),
    "ttl": (int, 86_400),
    "retries": (int, 3),
    "retry_delay": (str, "30s"),
    "origins": (list, []),
    "services": (list, list(PUSH_SERVICES)),
    "allow_insecure_endpoints": (bool, False),
}
SECTIONS: dict[str, Spec] = {"mail": MAIL, "push": PUSH}  # this side's table sections; each [digests.<edition>] follows EDITION

EDITION: Spec = {
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
# Every section of the file, both sides': what the environment may set, what only the file may, what is known.
ALL_SECTIONS: dict[str, Spec] = {**feeds_settings.SECTIONS, **SECTIONS}
FILE_ONLY = {**feeds_settings.FILE_ONLY, "digests": "[digests.*]"}
TOP_LEVEL = frozenset(ALL_SECTIONS) | frozenset(feeds_settings.ARRAYS) | {"digests"}


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """The whole configuration file, both sides' sections, with the environment's overrides."""
    environ = os.environ if environ is None else environ
    raw = apply_environment(read_config(path), environ, ALL_SECTIONS, file_only=FILE_ONLY,
                            aliases=feeds_settings.ENV_ALIASES)
    return replace(build_settings(raw), path=path)


def build_settings(raw: Mapping[str, Any]) -> Settings:
    """Both sides' settings from the file's dict: the content side's sections first, then [mail], then [digests]."""
    check_top_level(raw, TOP_LEVEL)
    base = feeds_settings.build_settings({k: v for k, v in raw.items() if k not in SECTIONS and k != "digests"})
    mail = _build_mail(table("mail", raw.get("mail", {}), MAIL))
    digests = _build_digests(raw.get("digests", {}), base.site.timezone)
    push = _build_push(table("push", raw["push"], PUSH)) if "push" in raw else None
    return Settings(**{f.name: getattr(base, f.name) for f in fields(base)}, mail=mail, digests=digests, push=push)


def _build_push(v: dict[str, Any]) -> PushSettings:
    """[push], its key read here: a missing, unreadable or wrong key stops the start naming the key, not the first
    alert."""
    path = Path(v["vapid_private_key_file"])
    check("push.vapid_private_key_file", path.is_file(), f"{path} is not a readable file (make one with "
                                                         "`gazette push keys --out FILE`)")
    try:
        public = public_key_of(read_vapid_key(path))
    except PushKeyError as exc:
        raise ConfigError("push.vapid_private_key_file", str(exc)) from None
    subject = v["vapid_subject"]
    check("push.vapid_subject", (subject.startswith("mailto:") and "@" in subject
                                 or subject.startswith("https://") and bool(urlsplit(subject).hostname))
          and len(subject) <= 200 and not any(c in subject for c in ' \r\n"<>'),
          "must be a mailto: address or an https: URL the push services can reach you at (RFC 8292 §2.1)")
    check("push.rate_per_second", 0 < v["rate_per_second"] <= 10_000, "must be above zero and at most 10000")
    check("push.concurrency", 1 <= v["concurrency"] <= 64, "must be between 1 and 64")
    check("push.ttl", 0 <= v["ttl"] <= 2_419_200, "must be between 0 and 2419200 seconds (28 days)")
    check("push.retries", 0 <= v["retries"] <= 10, "must be between 0 and 10")
    origins = []
    for i, origin in enumerate(v["origins"]):
        parts = urlsplit(origin) if isinstance(origin, str) else None
        check(f"push.origins[{i}]", parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
              and not parts.path.strip("/") and not parts.query and "@" not in origin,
              "must be an origin such as https://www.example.com (scheme, host and port only)")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())  # type: ignore[union-attr]
    for i, host in enumerate(v["services"]):
        check(f"push.services[{i}]", isinstance(host, str) and 3 <= len(host) <= 253 and "." in host
              and all(part.isascii() and part.replace("-", "").isalnum() for part in host.lower().split(".")),
              "must be a host name such as fcm.googleapis.com (its subdomains count too)")
    return PushSettings(vapid_private_key_file=path, vapid_public_key=public, vapid_subject=subject,
                        rate_per_second=float(v["rate_per_second"]), concurrency=v["concurrency"], ttl=v["ttl"],
                        retries=v["retries"],
                        retry_delay=convert("push.retry_delay", v["retry_delay"], parse_duration),
                        origins=tuple(origins), services=tuple(h.lower() for h in v["services"]),
                        allow_insecure_endpoints=v["allow_insecure_endpoints"])


def _build_mail(v: dict[str, Any]) -> MailSettings:
    scheme, sep, rest = v["url"].partition("://")
    check("mail.url", bool(sep) and scheme in MAIL_SCHEMES and bool(rest),
          f"must be one of {', '.join(s + '://' for s in MAIL_SCHEMES)} followed by a path or host:port")
    if scheme != "maildir":
        parts = urlsplit(v["url"])
        check("mail.url", bool(parts.hostname), "needs a host, as in smtp://mail.example.com:587")
        try:
            _ = parts.port  # urlsplit checks the port only when asked
        except ValueError:
            raise ConfigError("mail.url", "has a port that is not a number") from None
    check("mail.rate_per_second", v["rate_per_second"] > 0, "must be above zero")
    check("mail.concurrency", 1 <= v["concurrency"] <= 64, "must be between 1 and 64")
    for key in ("from", "reply_to"):
        if v[key] is not None:
            check(f"mail.{key}", _is_mailbox(v[key]),
                  "must be an address such as 'Newsroom <news@example.com>' (put a name holding , ; : @ . or \" "
                  "in double quotes)")
    check("mail.dkim_key_file", (v["dkim_selector"] is None) == (v["dkim_key_file"] is None),
          "dkim_selector and dkim_key_file go together")
    check("mail.dkim_ed25519_key_file", (v["dkim_ed25519_selector"] is None) == (v["dkim_ed25519_key_file"] is None),
          "dkim_ed25519_selector and dkim_ed25519_key_file go together")
    check("mail.hard_bounce_limit", 1 <= v["hard_bounce_limit"] <= 100, "must be between 1 and 100")
    check("mail.retries", 0 <= v["retries"] <= 20, "must be between 0 and 20")
    domain = parseaddr(v["from"])[1].rpartition("@")[2] or "localhost"
    unsubscribe = v["unsubscribe_address"] or f"unsubscribe@{domain}"
    check("mail.unsubscribe_address", "@" in unsubscribe and not set(unsubscribe) & set("<> ,;\r\n"),
          "must be a bare address such as unsubscribe@example.com")
    return_path = v["return_path"] or f"bounce@{domain}"
    check("mail.return_path", bool(_BARE_ADDRESS.match(return_path)) and "+" not in return_path,
          "must be a bare address such as bounce@example.com: no '+', a local part of at most 20 characters "
          "(each message adds +<tag>)")
    for i, sender in enumerate(v["complaint_senders"]):
        check(f"mail.complaint_senders[{i}]", isinstance(sender, str) and bool(_COMPLAINT_SENDER.match(sender)),
              "must be an address (feedback@arf.mail.yahoo.com) or a domain as @domain (@hotmail.com)")
    key_file, ed25519_key_file = _check_dkim(v)
    return MailSettings(url=v["url"], from_address=v["from"], reply_to=v["reply_to"],
                        postal_address=v["postal_address"], dkim_selector=v["dkim_selector"], dkim_key_file=key_file,
                        dkim_ed25519_selector=v["dkim_ed25519_selector"], dkim_ed25519_key_file=ed25519_key_file,
                        rate_per_second=float(v["rate_per_second"]), concurrency=v["concurrency"],
                        unsubscribe_address=unsubscribe,
                        bounce_folder=Path(v["bounce_folder"]) if v["bounce_folder"] else None,
                        hard_bounce_limit=v["hard_bounce_limit"], retries=v["retries"],
                        retry_delay=convert("mail.retry_delay", v["retry_delay"], parse_duration),
                        return_path=return_path,
                        complaint_senders=tuple(sender.lower() for sender in v["complaint_senders"]),
                        welcome=v["welcome"])


def _check_dkim(v: dict[str, Any]) -> tuple[Path | None, Path | None]:
    """The DKIM keys' files, each parsed here so that a missing, unreadable, encrypted, too short or wrong kind of
    key stops the start (naming the key) instead of the first send; the selectors and the From domain as they
    will stand in the signature. The Ed25519 signature comes only beside an RSA one: most receivers still verify
    RSA alone (RFC 8463 §4), and mail signed with Ed25519 only would look unsigned to them."""
    files: list[Path | None] = []
    kinds: tuple[tuple[KeyKind, str, str], ...] = (("rsa", "dkim_selector", "dkim_key_file"),
                                                   ("ed25519", "dkim_ed25519_selector", "dkim_ed25519_key_file"))
    for kind, selector_key, file_key in kinds:
        path = Path(v[file_key]) if v[file_key] else None
        files.append(path)
        if path is None:
            continue
        check(f"mail.{selector_key}", is_selector(v[selector_key]),
              "must be letters, digits, '-' and '_', in dot-separated labels (it is written into every signature)")
        check(f"mail.{file_key}", path.is_file(), f"{path} is not a readable file")
        try:
            read_private_key(path, kind)
        except DkimError as exc:
            raise ConfigError(f"mail.{file_key}", str(exc)) from None
    if files[1] is not None:
        check("mail.dkim_ed25519_selector", files[0] is not None,
              "needs dkim_selector and dkim_key_file too: receivers that know no Ed25519 (most) verify the RSA one")
        check("mail.dkim_ed25519_selector", v["dkim_ed25519_selector"] != v["dkim_selector"],
              "must differ from dkim_selector: a selector publishes one key")
    if files[0] is not None:
        try:
            signing_domain(v["from"])
        except DkimError as exc:
            raise ConfigError("mail.from", f"its domain signs the mail (DKIM d=): {exc}") from None
    return files[0], files[1]


def _is_mailbox(value: str) -> bool:
    """One address, with or without a display name, that reads back as written (no group, no second address)."""
    if any(c in value for c in "\r\n\0"):
        return False
    if len(getaddresses([value])) != 1:
        return False
    name, address = parseaddr(value)
    written = value.split("<", 1)[0].strip().strip('"') if "<" in value else ""
    return "@" in address and " " not in address and (not written or bool(name))


def _build_digests(raw: Any, timezone: ZoneInfo) -> tuple[EditionSettings, ...]:
    if not isinstance(raw, dict):
        raise ConfigError("digests", "must be a table of editions, as in [digests.daily]")
    tables = raw or _DEFAULT_EDITIONS
    out: list[EditionSettings] = []
    for name, item in tables.items():
        where = f"digests.{name}"
        check(where, bool(SLUG_RE.match(name)), "an edition name must be lowercase letters, digits and hyphens")
        v = table(where, item, EDITION)
        try:
            CronTrigger.from_crontab(v["schedule"], timezone=timezone)
        except ValueError as exc:
            raise ConfigError(f"{where}.schedule", f'"{v["schedule"]}" is not a cron expression ({exc})') from None
        defaults: Mapping[str, Any] = _DEFAULT_EDITIONS.get(name, {})
        window = v["window"] or defaults.get("window", "24h")
        check(f"{where}.ads", v["ad"] is None or v["ads"] is None, "give `ad` only (`ads` is its old name)")
        check(f"{where}.max_articles", 1 <= v["max_articles"] <= 200, "must be between 1 and 200")
        check(f"{where}.most_viewed", 0 <= v["most_viewed"] <= 50, "must be between 0 and 50")
        out.append(EditionSettings(name=name, schedule=v["schedule"],
                                   window=convert(f"{where}.window", window, parse_duration),
                                   max_articles=v["max_articles"], most_viewed=v["most_viewed"],
                                   has_ads=bool(v["ad"] if v["ad"] is not None else v["ads"]),
                                   label=words(f"{where}.label", v["label"] or defaults.get("label") or name,
                                               LANGUAGES),
                                   description=words(f"{where}.description",
                                                     v["description"] or defaults.get("description") or "", LANGUAGES)))
    return tuple(out)

"""Settings: every kind of bad value stops the start with the key and the reason; good files load."""

from __future__ import annotations

import logging
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from feeds import settings as feeds_settings
from feeds.core.config import parse_duration
from feeds.core.errors import ConfigError
from feeds.settings import LogSettings, build_settings
from newsletter.settings import build_settings as newsletter_build_settings
from newsletter.settings import load_settings
from tests.conftest import ROOT, gazette_command

MINIMAL = """
[secrets]
signing_key = "0123456789abcdef0123"

[[categories]]
slug = "politics"
name = "정치"
"""


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "gazette.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ or {})


def test_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    s = load_text(tmp_path, MINIMAL)
    assert s.site.timezone.key == "Asia/Seoul"
    assert s.site.language == "ko"
    assert s.database_url == "sqlite:///var/gazette.db"
    assert s.mail.url == "maildir://var/outbox"
    assert s.feeds.items == 50
    assert [e.name for e in s.digests] == ["daily", "weekly"]
    assert s.edition("daily").schedule == "0 7 * * *"
    assert s.edition("weekly").window == timedelta(days=7)


@pytest.mark.parametrize("extra, key, reason", [
    pytest.param("[site]\nnmae = 'x'\n", "site.nmae", "unknown key", id="unknown-key"),
    pytest.param("[sitee]\nname = 'x'\n", "sitee", "unknown section", id="unknown-section"),
    pytest.param("[site]\ntimezone = 'Asia/Seol'\n", "site.timezone", "not a known time zone", id="bad-timezone"),
    pytest.param("[site]\nlanguage = 'fr'\n", "site.language", "must be one of", id="bad-language"),
    pytest.param("[site]\nbase_url = 'news.example.com'\n", "site.base_url", "absolute http", id="relative-base-url"),
    pytest.param("[site]\nname = 3\n", "site.name", "must be a string", id="wrong-type"),
    pytest.param("[database]\nurl = 'mysql://x'\n", "database.url", "sqlite", id="bad-database"),
    pytest.param("[logging]\nlevel = 'LOUD'\n", "logging.level", "not one of DEBUG, INFO, WARNING, ERROR",
                 id="bad-log-level"),
    pytest.param("[logging]\nlevel = 10\n", "logging.level", "must be a string", id="numeric-log-level"),
    pytest.param("[logging]\nformat = 'logfmt'\n", "logging.format", "not one of text, json", id="bad-log-format"),
    pytest.param("[logging]\ncolour = true\n", "logging.colour", "unknown key", id="logging-unknown-key"),
    pytest.param("[mail]\nurl = 'smtp://'\n", "mail.url", "must be one of", id="mail-no-host"),
    pytest.param("[mail]\nurl = 'smtp://host:port'\n", "mail.url", "port", id="mail-bad-port"),
    pytest.param("[mail]\nurl = 'ftp://x'\n", "mail.url", "must be one of", id="mail-bad-scheme"),
    pytest.param("[mail]\nconcurrency = true\n", "mail.concurrency", "whole number", id="bool-for-int"),
    pytest.param("[mail]\nrate_per_second = 0\n", "mail.rate_per_second", "above zero", id="zero-rate"),
    pytest.param("[mail]\ndkim_selector = 's1'\n", "mail.dkim_key_file", "go together", id="dkim-half"),
    pytest.param("[feeds]\nitems = 0\n", "feeds.items", "between", id="zero-items"),
    pytest.param("[admin]\ntoken = 'short'\n", "admin.token", "16", id="short-token"),
    pytest.param("[scheduler]\nlease_ttl = 'soon'\n", "scheduler.lease_ttl", "not a duration", id="bad-lease"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\npath='x.xml'\ncategory='sports'\n", "sources[0].category",
                 "not a configured category", id="source-unknown-category"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\npath='x.xml'\ncategory_map={ '스포츠' = 'sports' }\n",
                 "sources[0].category_map.스포츠", "not a configured category", id="map-unknown-category"),
    pytest.param("[[sources]]\nname='a'\nkind='rss'\npath='x.xml'\ncategory='politics'\n", "sources[0].kind",
                 "not one of", id="source-bad-kind"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\npath='x.xml'\ncategory='politics'\ninterval='10x'\n",
                 "sources[0].interval", "not a duration", id="source-bad-interval"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\ncategory='politics'\n", "sources[0]", "exactly one of url or path",
                 id="source-no-location"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\nurl='ftp://x'\ncategory='politics'\n", "sources[0].url", "http",
                 id="source-bad-url"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\npath='x'\n", "sources[0]", "category", id="source-no-category"),
    pytest.param("[[sources]]\nname='a'\nkind='feed'\npath='x'\ncategory='politics'\n"
                 "[[sources]]\nname='a'\nkind='feed'\npath='y'\ncategory='politics'\n", "sources[1].name",
                 "used by another source", id="source-duplicate"),
    pytest.param("[digests.daily]\nschedule = '0 25 * * *'\n", "digests.daily.schedule", "not a cron", id="bad-cron"),
    pytest.param("[digests.daily]\nschedule = '0 7 * * *'\nwindow = 'a day'\n", "digests.daily.window",
                 "not a duration", id="bad-window"),
    pytest.param("[digests.daily]\nschedule = '0 7 * * *'\nsend_at = 1\n", "digests.daily.send_at", "unknown key",
                 id="edition-unknown-key"),
    pytest.param("[[partners]]\nslug='p'\nname='P'\ncategories=['sports']\n", "partners[0].categories[0]",
                 "not a configured category", id="partner-unknown-category"),
    pytest.param("[[categories]]\nslug='all'\nname='전체'\n", "categories[1].slug", "reserved", id="reserved-slug"),
    pytest.param("[[categories]]\nslug='Politics!'\nname='x'\n", "categories[1].slug", "lowercase", id="bad-slug"),
])
def test_bad_values_name_the_key(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, MINIMAL + extra)
    assert info.value.key == key
    assert reason in info.value.reason


def test_missing_signing_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"secrets.signing_key: is required"):
        load_text(tmp_path, "[site]\nname = 'x'\n")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_text(tmp_path, "[site\n")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml", {})


@pytest.mark.parametrize("environ, check", [
    pytest.param({"GAZETTE_DATABASE_URL": "postgresql://db/gazette"},
                 lambda s: s.database_url == "postgresql://db/gazette", id="string"),
    pytest.param({"GAZETTE_MAIL_CONCURRENCY": "8"}, lambda s: s.mail.concurrency == 8, id="int"),
    pytest.param({"GAZETTE_MAIL_RATE_PER_SECOND": "12.5"}, lambda s: s.mail.rate_per_second == 12.5, id="float"),
    pytest.param({"GAZETTE_FEEDS_FULL_CONTENT": "false"}, lambda s: s.feeds.full_content is False, id="bool"),
    pytest.param({"GAZETTE_SITE_TIMEZONE": "UTC"}, lambda s: s.site.timezone.key == "UTC", id="timezone"),
    pytest.param({"GAZETTE_CONFIG": "ignored.toml", "PATH": "/bin"}, lambda s: True, id="other-variables"),
    pytest.param({}, lambda s: s.logging == LogSettings(level=None, format="text"), id="logging-defaults"),
    pytest.param({"GAZETTE_LOG_LEVEL": "debug", "GAZETTE_LOG_FORMAT": "json"},
                 lambda s: s.logging == LogSettings(level="DEBUG", format="json"), id="log-short-names"),
    pytest.param({"GAZETTE_LOGGING_LEVEL": "ERROR", "GAZETTE_LOGGING_FORMAT": "json"},
                 lambda s: s.logging == LogSettings(level="ERROR", format="json"), id="logging-generic-names"),
    pytest.param({"GAZETTE_LOG_LEVEL": "INFO", "GAZETTE_LOGGING_LEVEL": "INFO"},
                 lambda s: s.logging.level == "INFO", id="both-names-agree"),
])
def test_environment_overrides_scalar_keys(tmp_path: Path, environ: dict[str, str], check) -> None:  # type: ignore[no-untyped-def]
    assert check(load_text(tmp_path, MINIMAL, environ))


@pytest.mark.parametrize("name", [
    pytest.param("GAZETTE_TEST_POSTGRES_URL", id="test-suite"),
    pytest.param("GAZETTE_FOO", id="no-key"),
    pytest.param("GAZETTE_SITEMAP_URL", id="prefix-of-no-section"),  # "sitemap" is not "site"
    pytest.param("GAZETTE_DATABASE", id="section-without-key"),
    pytest.param("GAZETTE_", id="bare-prefix"),
])
def test_other_gazette_variables_are_ignored_with_a_debug_note(tmp_path: Path, name: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="feeds.core.config"):
        s = load_text(tmp_path, MINIMAL, {name: "postgresql://elsewhere/x"})
    assert s == load_text(tmp_path, MINIMAL)
    assert [r.getMessage() for r in caplog.records if name in r.getMessage()], caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_gazette_config_is_read_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="feeds.core.config"):
        load_text(tmp_path, MINIMAL, {"GAZETTE_CONFIG": "other.toml"})
    assert "GAZETTE_CONFIG" not in caplog.text  # the config path, not an ignored name


@pytest.mark.parametrize("environ, key, reason", [
    pytest.param({"GAZETTE_DATABASE_NAME": "x"}, "GAZETTE_DATABASE_NAME", 'unknown key "name" of [database]',
                 id="unknown-key"),
    pytest.param({"GAZETTE_DATABASE_URLL": "x"}, "GAZETTE_DATABASE_URLL", 'unknown key "urll" of [database]',
                 id="typo-of-a-key"),
    pytest.param({"GAZETTE_LOGGING_LEVL": "x"}, "GAZETTE_LOGGING_LEVL", "known: level, format", id="typo-in-logging"),
    pytest.param({"GAZETTE_SOURCES_URL": "x"}, "GAZETTE_SOURCES_URL", "[[sources]] is set in the configuration file",
                 id="array-of-tables"),
    pytest.param({"GAZETTE_DIGESTS_DAILY": "x"}, "GAZETTE_DIGESTS_DAILY", "[digests.*] is set in the configuration",
                 id="digests"),
    pytest.param({"GAZETTE_FEEDS_HUBS": "https://hub"}, "GAZETTE_FEEDS_HUBS", "feeds.hubs is an array",
                 id="array-key"),
    pytest.param({"GAZETTE_MAIL_CONCURRENCY": "many"}, "GAZETTE_MAIL_CONCURRENCY", "not a whole number",
                 id="not-int"),
    pytest.param({"GAZETTE_FEEDS_FULL_CONTENT": "maybe"}, "GAZETTE_FEEDS_FULL_CONTENT", "not a boolean",
                 id="not-bool"),
    pytest.param({"GAZETTE_SITE_TIMEZONE": "Mars/Base"}, "site.timezone", "not a known time zone", id="bad-value"),
    pytest.param({"GAZETTE_LOG_LEVEL": "LOUD"}, "logging.level", "not one of DEBUG, INFO, WARNING, ERROR",
                 id="bad-log-level"),
    pytest.param({"GAZETTE_LOG_FORMAT": "xml"}, "logging.format", "not one of text, json", id="bad-log-format"),
    pytest.param({"GAZETTE_LOG_LEVEL": "DEBUG", "GAZETTE_LOGGING_LEVEL": "ERROR"}, "GAZETTE_LOG_LEVEL",
                 "GAZETTE_LOGGING_LEVEL says 'ERROR'", id="alias-disagrees"),
])
def test_bad_environment_overrides_name_the_variable(tmp_path: Path, environ: dict[str, str], key: str,
                                                     reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, MINIMAL, environ)
    assert info.value.key == key
    assert reason in info.value.reason


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("10m", 600), ("1h30m", 5400), ("7d", 604800), ("2w", 1209600)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "10x", "m10", "0s", "10m garbage"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_settings_are_immutable(tmp_path: Path) -> None:
    s = load_text(tmp_path, MINIMAL)
    with pytest.raises(AttributeError):
        s.site.name = "changed"  # type: ignore[misc]


def test_demo_configuration_is_valid() -> None:
    s = load_settings(ROOT / "examples" / "demo.toml", {})
    assert len(s.categories) >= 4 and len(s.sources) == 3 and len(s.partners) == 1


@pytest.mark.parametrize("build, section", [
    pytest.param(build_settings, "site", id="content-side"),
    pytest.param(newsletter_build_settings, "site", id="whole-file"),
    pytest.param(newsletter_build_settings, "mail", id="whole-file-mail"),
])
def test_build_settings_refuses_non_table_sections(build, section: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=f"{section}: must be a table"):
        build({section: 3, "secrets": {"signing_key": "0123456789abcdef0123"}})


def test_whole_settings_extend_the_content_side_s() -> None:
    s = newsletter_build_settings({"secrets": {"signing_key": "0123456789abcdef0123"}})
    assert isinstance(s, feeds_settings.Settings)
    with pytest.raises(AttributeError):
        s.mail = s.mail  # type: ignore[misc]


def test_the_content_side_loads_a_file_of_its_own_sections(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """feeds.settings.load_settings knows only the content side's sections: its Settings has no mail, a [mail] in
    the file is an unknown section, and GAZETTE_MAIL_* is not one of its variables (ignored, as any other)."""
    path = tmp_path / "content.toml"
    path.write_text(MINIMAL + "[feeds]\nitems = 7\n", encoding="utf-8")
    with caplog.at_level(logging.DEBUG, logger="feeds.core.config"):
        s = feeds_settings.load_settings(path, {"GAZETTE_MAIL_URL": "smtp://x:25", "GAZETTE_FEEDS_ITEMS": "9"})
    assert type(s) is feeds_settings.Settings and not hasattr(s, "mail") and not hasattr(s, "digests")
    assert s.feeds.items == 9 and s.path == path and [c.slug for c in s.categories] == ["politics"]
    assert "GAZETTE_MAIL_URL is not a setting" in caplog.text
    for extra, key in (("[mail]\nurl = 'smtp://x:25'\n", "mail"), ("[digests.daily]\nschedule = '0 7 * * *'\n", "digests")):
        path.write_text(MINIMAL + extra, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            feeds_settings.load_settings(path, {})
        assert info.value.key == key and "unknown section" in info.value.reason
        assert "mail" not in info.value.reason and "digests" not in info.value.reason


def test_check_command_exits_2_and_names_the_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(MINIMAL + "[[sources]]\nname='a'\nkind='feed'\npath='x'\ncategory='sports'\n", encoding="utf-8")
    result = subprocess.run(gazette_command() + ["check", "--config", str(broken)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert "sources[0].category" in result.stderr and "sports" in result.stderr


def test_check_command_prints_what_would_run(tmp_path: Path) -> None:
    result = subprocess.run(gazette_command() + ["--config", str(ROOT / "examples" / "demo.toml"), "check"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hanbit-rss: feed var/demo/politics-society.rss, every 10m" in result.stdout
    assert "daily (아침 뉴스): cron '0 7 * * *'" in result.stdout and "next in Asia/Kolkata: " in result.stdout
    assert "evening (저녁 브리핑): cron '0 18 * * mon-fri'" in result.stdout
    assert "KST" in result.stdout


@pytest.mark.parametrize("extra, key", [
    pytest.param("[feeds]\nper_feed.sports = { items = 3 }\n", "feeds.per_feed.sports", id="unknown-feed"),
    pytest.param("[feeds]\nper_feed.all = { items = 0 }\n", "feeds.per_feed.all.items", id="zero-items"),
    pytest.param("[feeds]\nper_feed.all = { size = 3 }\n", "feeds.per_feed.all.size", id="unknown-key"),
    pytest.param("[feeds]\nhubs = ['not a url']\n", "feeds.hubs[0]", id="bad-hub"),
])
def test_bad_feed_settings(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, MINIMAL + extra)
    assert info.value.key == key

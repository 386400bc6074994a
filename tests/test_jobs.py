"""The scheduled jobs: which exist for which settings, their triggers and graces, and the work of the audience
side's jobs over fake stores; and the wiring's refusal of a name that is not configured."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import click
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner

from feeds.core.commands import GazetteGroup
from feeds.errors import UnknownName
from feeds.jobs import ingest_jobs
from newsletter.errors import DeliveryError, UnknownEdition
from newsletter.jobs import DIGEST_MISFIRE_GRACE, RECONFIRM_EVERY, AudienceJobs
from newsletter.settings import Settings, load_settings
from tests.conftest import write_config

SEOUL = ZoneInfo("Asia/Seoul")
SOURCES = """
[[sources]]
name = "wire"
kind = "feed"
path = "wire.xml"
category = "politics"
interval = "10m"

[[sources]]
name = "daily-export"
kind = "jsonl"
path = "export.jsonl"
category = "economy"
interval = "12h"
"""


def settings_with(tmp_path: Path, extra: str = "") -> Settings:
    return load_settings(write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}",
                                      extra=extra), {})


class Sent:
    """A send function that records what it was asked to send."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    def __call__(self, edition: str, at: datetime):  # type: ignore[no-untyped-def]
        self.runs.append((edition, at))
        return SimpleNamespace(line=lambda: f"{edition} at {at.isoformat()}: sent")


def audience(settings: Settings, *, zones=(None,), under_way=(), unfinished=(), due=(), notices=None,  # type: ignore[no-untyped-def]
             now: datetime = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)) -> tuple[AudienceJobs, Sent, SimpleNamespace]:
    sent = Sent()
    batches = [list(due)] if due else []
    subscribers = SimpleNamespace(zones=lambda: list(zones), marked=[],
                                  due_for_reconfirmation=lambda now, every: batches.pop(0) if batches else [])
    subscribers.mark_reconfirmation_sent = lambda sid, at, text: subscribers.marked.append((sid, at, text))
    deliveries = SimpleNamespace(is_under_way=lambda name, at: (name, at) in under_way,
                                 unfinished=lambda now: list(unfinished))
    jobs = AudienceJobs(settings, subscribers, deliveries, notices, tokens=None, tags=None,  # type: ignore[arg-type]
                        clock=lambda: now, send=sent)
    return jobs, sent, subscribers


def test_each_source_is_ingested_every_its_interval_with_a_bounded_jitter(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, SOURCES)
    asked: list[str] = []
    specs = ingest_jobs(settings.sources, SEOUL,
                        lambda name: asked.append(name) or f"{name}: unchanged")
    assert [(s.key, s.name) for s in specs] == [("ingest:wire", "ingest wire"),
                                                ("ingest:daily-export", "ingest daily-export")]
    for spec, seconds, jitter in zip(specs, (600, 43200), (30, 30)):
        assert isinstance(spec.trigger, IntervalTrigger)
        assert spec.trigger.interval == timedelta(seconds=seconds) and spec.trigger.jitter == jitter
        assert spec.trigger.timezone == SEOUL
        assert (spec.misfire_grace, spec.start_now) == (timedelta(minutes=5), True)
    short = ingest_jobs([dataclasses.replace(settings.sources[0], interval=timedelta(minutes=2))], SEOUL,
                        lambda name: "")
    assert short[0].trigger.jitter == 12  # a tenth of the interval when that is under 30 s
    assert specs[1].run(datetime(2026, 11, 25, tzinfo=UTC)) == "daily-export: unchanged"
    assert asked == ["daily-export"]


@pytest.mark.parametrize(("extra", "no_editions", "keys"), [
    pytest.param("", False, ["digest:due", "consent:reconfirm", "digest:resume"], id="editions"),
    pytest.param("", True, [], id="no-editions"),
    pytest.param("bounce_folder = '{folder}'\n", False, ["digest:due", "bounces", "consent:reconfirm",
                                                         "digest:resume"], id="editions-and-bounces"),
    pytest.param("bounce_folder = '{folder}'\n", True, ["bounces"], id="bounces-only"),
])
def test_the_audience_jobs_follow_the_settings(tmp_path: Path, extra: str, no_editions: bool, keys: list[str]) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}")
    text = config.read_text().replace("[mail]\n", "[mail]\n" + extra.format(folder=tmp_path / "bounces"), 1)
    config.write_text(text)
    settings = load_settings(config, {})
    if no_editions:
        settings = dataclasses.replace(settings, digests=())
    jobs, _, _ = audience(settings)
    assert [spec.key for spec in jobs.specs()] == keys


def test_the_audience_jobs_triggers_and_graces(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}")
    config.write_text(config.read_text().replace("[mail]\n", f"[mail]\nbounce_folder = '{tmp_path}'\n", 1))
    jobs, _, _ = audience(load_settings(config, {}))
    specs = {spec.key: spec for spec in jobs.specs()}
    due, bounces, reconfirm, resume = (specs[k] for k in ("digest:due", "bounces", "consent:reconfirm",
                                                          "digest:resume"))
    assert str(due.trigger) == str(CronTrigger(minute="*/15", timezone=UTC))  # every reader's zone, from UTC
    assert str(reconfirm.trigger) == str(CronTrigger(hour=10, minute=30, timezone=SEOUL))  # not at night
    for spec in (bounces, resume):
        assert isinstance(spec.trigger, IntervalTrigger) and spec.trigger.interval == timedelta(minutes=5)
        assert spec.trigger.timezone == SEOUL
    assert [s.misfire_grace for s in (due, bounces, reconfirm, resume)] == [
        timedelta(minutes=5), timedelta(minutes=5), DIGEST_MISFIRE_GRACE, timedelta(minutes=5)]
    assert [s.start_now for s in (due, bounces, reconfirm, resume)] == [False, True, False, False]


def test_send_due_sends_each_run_due_on_a_reader_s_clock_once_and_skips_one_under_way(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)  # daily at 07:00, weekly on Mondays at 07:00, in the site's zone
    seoul_seven = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # Wednesday 25 November, 07:00 in Seoul
    jobs, sent, _ = audience(settings, zones=(None, "Asia/Kolkata"))
    assert jobs.send_due(seoul_seven) == f"daily at {seoul_seven.isoformat()}: sent"
    assert sent.runs == [("daily", seoul_seven)]

    kolkata_seven = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    jobs, sent, _ = audience(settings, zones=(None, "Asia/Kolkata"))
    jobs.send_due(kolkata_seven)  # looks back two hours: Kolkata's 07:00 only (Seoul's is five hours ago)
    assert sent.runs == [("daily", kolkata_seven)]

    jobs, sent, _ = audience(settings, zones=(None, "Asia/Kolkata"), under_way=[("daily", kolkata_seven)])
    assert jobs.send_due(kolkata_seven) == "no edition due"  # the resume job carries a run under way on
    assert sent.runs == []


def test_resume_editions_carries_on_configured_editions_only(tmp_path: Path) -> None:
    at = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    jobs, sent, _ = audience(settings_with(tmp_path), unfinished=[("daily", at), ("evening", at)])
    assert jobs.resume_editions() == f"daily at {at.isoformat()}: sent"
    assert sent.runs == [("daily", at)]
    jobs, _, _ = audience(settings_with(tmp_path))
    assert jobs.resume_editions() == "nothing to resume"


def test_reconfirm_ads_asks_each_reader_due_and_stops_at_a_failing_relay(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    readers = [SimpleNamespace(id=1, language=None), SimpleNamespace(id=2, language="en")]
    asked: list[tuple[int, str]] = []

    def reconfirm(subscriber, language):  # type: ignore[no-untyped-def]
        asked.append((subscriber.id, language))
        return f"question {subscriber.id}"

    jobs, _, subscribers = audience(settings, due=readers, notices=SimpleNamespace(reconfirm=reconfirm))
    assert jobs.reconfirm_ads() == "advertising consent re-confirmation: asked 2"
    assert asked == [(1, "ko"), (2, "en")]
    assert [(sid, text) for sid, _, text in subscribers.marked] == [(1, "question 1"), (2, "question 2")]

    def refused(subscriber, language):  # type: ignore[no-untyped-def]
        raise DeliveryError("relay down", is_permanent=False)

    jobs, _, subscribers = audience(settings, due=readers, notices=SimpleNamespace(reconfirm=refused))
    assert jobs.reconfirm_ads() == "advertising consent re-confirmation: asked 0, failed 2"
    assert subscribers.marked == []  # asked again on the next run
    assert RECONFIRM_EVERY == timedelta(days=730)


def test_the_wiring_lists_the_content_jobs_then_the_audience_jobs(tmp_path: Path) -> None:
    import service

    components = service.Components(settings_with(tmp_path, SOURCES))
    components.prepare_database(migrate=True)  # the jobs include the sources stored in the database
    assert [s.key for s in components.task_specs()] == ["ingest:wire", "ingest:daily-export", "console:sessions",
                                                        "events:prune", "digest:due", "consent:reconfirm", "digest:resume", "figures:daily"]


def test_a_name_that_is_not_configured_is_refused_with_its_status(tmp_path: Path) -> None:
    import service

    components = service.Components(settings_with(tmp_path, SOURCES))
    components.prepare_database(migrate=True)  # a source may be one stored in the database
    at = datetime(2026, 11, 25, tzinfo=UTC)
    with pytest.raises(UnknownName, match=r"unknown source 'nosuch'; configured: wire, daily-export") as source:
        components.ingest("nosuch")
    refused = [source.value]
    for call in (lambda: components.send("hourly", at), lambda: components.preview("hourly", at, "a@example.com"),
                 lambda: components.plan("hourly", at), lambda: components.retry("hourly", 1, at)):
        with pytest.raises(UnknownEdition, match=r"unknown edition 'hourly'; configured: daily, weekly") as edition:
            call()
        refused.append(edition.value)
    assert {exc.status for exc in refused} == {404}


def test_the_cli_shows_a_refused_name_in_one_line_with_exit_code_1(tmp_path: Path) -> None:
    import service

    components = service.Components(settings_with(tmp_path))

    @click.group(cls=GazetteGroup)
    def gazette() -> None:
        pass

    @gazette.command()
    def send() -> None:
        components.send("hourly", datetime(2026, 11, 25, tzinfo=UTC))

    result = CliRunner().invoke(gazette, ["send"])
    assert result.exit_code == 1
    assert result.output == "gazette: unknown edition 'hourly'; configured: daily, weekly\n"

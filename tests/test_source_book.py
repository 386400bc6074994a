"""Sources stored in the database beside the file's: the one rule for a definition, add / edit / pause / resume /
delete through the admin API, the test that stores nothing, the CLI's view of them, and a running scheduler that
picks a new source up within `[scheduler] reload`.

Feeds are served on loopback by `tests.test_fetch.Site`; the configuration allows stored sources the private network
(`[admin] sources_private_network`) where a test needs to reach them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from feeds import db
from feeds.errors import BadDefinition, StoreError, UnknownName
from newsletter.settings import load_settings
from tests.conftest import DATA, Clock, InProcessClient, run_gazette, wait_until, write_config
from tests.test_fetch import Site, respond

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
ATOM = (DATA / "sources" / "atom_basic.atom").read_bytes()
CONFIG = """
[admin]
token = "admin-token-0123456789"
sources_private_network = {private}

[[sources]]
name = "wire"
kind = "feed"
url = "https://wire.example.com/rss"
category = "politics"
"""


def config(tmp_path: Path, database_url: str, *, private: bool = True, lease_ttl: str = "30s") -> Path:
    return write_config(tmp_path / "gazette.toml", database_url=database_url, lease_ttl=lease_ttl,
                        mail_url=f"maildir://{tmp_path / 'outbox'}",
                        extra=CONFIG.format(private="true" if private else "false"))


@pytest.fixture
def feed() -> Iterator[Site]:
    site = Site()
    site.routes["/atom.xml"] = respond(200, ATOM, Content_Type="application/atom+xml")
    yield site
    site.close()


@pytest.fixture
def services(tmp_path: Path, database_url: str, clock: Clock):  # type: ignore[no-untyped-def]
    import service

    services = service.Components(load_settings(config(tmp_path, database_url), {}), clock=clock)
    services.prepare_database(migrate=True)
    yield services
    services.close()


@pytest.fixture
def api(services):  # type: ignore[no-untyped-def]
    import service

    with InProcessClient(service.create_app(services)) as client:
        yield client


def definition(feed: Site, **changes: Any) -> dict[str, Any]:
    return {"name": "연합 속보", "kind": "feed", "url": f"{feed.url}/atom.xml", "category": "economy",
            "allow_private_network": True, **changes}


def article_count(services) -> int:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(db.articles)).scalar_one()


# --- the one rule ------------------------------------------------------------------------------------------------

GOOD = {"name": "속보", "kind": "feed", "url": "https://news.example.org/rss", "category": "economy"}


@pytest.mark.parametrize("changes, key", [
    pytest.param({"name": ""}, "name", id="empty-name"),
    pytest.param({"name": " "}, "name", id="blank-name"),
    pytest.param({"name": "x" * 201}, "name", id="long-name"),
    pytest.param({"name": "bad\nname"}, "name", id="newline-in-name"),
    pytest.param({"name": "evil\u202etxt.exe"}, "name", id="bidi-override-in-name"),
    pytest.param({"name": "zero\u200bwidth"}, "name", id="zero-width-in-name"),
    pytest.param({"kind": "rss"}, "kind", id="unknown-kind"),
    pytest.param({"url": "ftp://news.example.org/rss"}, "url", id="ftp-url"),
    pytest.param({"url": "javascript:alert(1)"}, "url", id="javascript-url"),
    pytest.param({"url": "file:///etc/passwd"}, "url", id="file-url"),
    pytest.param({"url": "https://news.example.org/" + "a" * 2100}, "url", id="long-url"),
    pytest.param({"url": None, "path": "/etc/passwd"}, "path", id="local-path"),
    pytest.param({"path": "/etc/passwd"}, "source", id="url-and-path"),
    pytest.param({"url": None}, "source", id="neither-url-nor-path"),
    pytest.param({"interval": "soon"}, "interval", id="bad-interval"),
    pytest.param({"interval": "0s"}, "interval", id="zero-interval"),
    pytest.param({"category": "sports"}, "category", id="unknown-category"),
    pytest.param({"category": None}, "source", id="no-category"),
    pytest.param({"category": None, "category_map": {"정치": "nope"}}, "category_map.정치", id="bad-map"),
    pytest.param({"allow_hosts": ["not a host"]}, "allow_hosts[0]", id="bad-allow-host"),
    pytest.param({"wall_clock_zone": "Mars/Olympus"}, "wall_clock_zone", id="bad-zone"),
    pytest.param({"allow_private_network": True}, "allow_private_network", id="private-not-allowed"),
    pytest.param({"surprise": 1}, "surprise", id="unknown-key"),
    pytest.param({"interval": 600}, "interval", id="wrong-type"),
])
def test_a_bad_definition_is_refused_naming_the_key(tmp_path: Path, clock: Clock, changes: dict[str, Any],
                                                    key: str) -> None:
    import service

    settings = load_settings(config(tmp_path, f"sqlite:///{tmp_path / 'g.db'}", private=False), {})
    book = service.Components(settings, clock=clock).source_book
    chosen = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(BadDefinition) as refused:
        book.check(chosen)
    assert refused.value.key == key
    assert refused.value.status == 422


def test_a_good_definition_reads_back_as_it_was_written(tmp_path: Path, clock: Clock) -> None:
    import service
    from feeds.source_book import source_definition

    settings = load_settings(config(tmp_path, f"sqlite:///{tmp_path / 'g.db'}"), {})
    book = service.Components(settings, clock=clock).source_book
    written = {**GOOD, "interval": "90s", "category_map": {"경제": "economy"}, "allow_hosts": ["cdn.example.org"],
               "wall_clock_zone": "Asia/Seoul", "allow_private_network": True}
    source = book.check(written)
    assert source_definition(source) == written
    assert book.check(source_definition(source)) == source


# --- the API -----------------------------------------------------------------------------------------------------

def test_add_edit_pause_resume_delete(api, services, feed: Site) -> None:  # type: ignore[no-untyped-def]
    created = api.post("/api/sources", json=definition(feed), headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["origin"] == "console" and body["editable"] and not body["paused"]
    assert body["definition"]["interval"] == "10m" and body["created_by"] == "admin token"
    assert [e.name for e in services.source_book.entries()] == ["wire", "연합 속보"]
    assert services.store.source("연합 속보") is not None  # it has a state row to be polled with

    again = api.post("/api/sources", json=definition(feed), headers=ADMIN)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    config_name = api.post("/api/sources", json=definition(feed, name="wire"), headers=ADMIN)
    assert config_name.status_code == 409 and "configuration file" in config_name.json()["detail"]

    name = "/api/sources/%EC%97%B0%ED%95%A9%20%EC%86%8D%EB%B3%B4"  # 연합 속보
    edited = api.request("PATCH", name, json={"interval": "5m", "category": None, "category_map": {"경제": "economy"}},
                       headers=ADMIN)
    assert edited.status_code == 200, edited.text
    assert edited.json()["definition"]["interval"] == "5m"
    assert "category" not in edited.json()["definition"]
    assert services.store.source("연합 속보").interval_seconds == 300
    bad = api.request("PATCH", name, json={"url": "gopher://x"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("url: ")
    renamed = api.request("PATCH", name, json={"name": "other"}, headers=ADMIN)
    assert renamed.status_code == 422 and renamed.json()["detail"].startswith("name: ")

    paused = api.post(name + "/pause", headers=ADMIN)
    assert paused.status_code == 200 and paused.json()["paused"]
    listed = {s["name"]: s for s in api.get("/api/sources", headers=ADMIN).json()["items"]}
    assert listed["wire"]["origin"] == "config" and listed["연합 속보"]["origin"] == "console"
    assert listed["연합 속보"]["paused"] and listed["연합 속보"]["status"] == "paused"
    assert [s.name for s in services.source_book.active()] == ["wire"]
    assert "ingest:연합 속보" not in {spec.key for spec in services.task_specs()}
    resumed = api.post(name + "/resume", headers=ADMIN)
    assert resumed.status_code == 200 and not resumed.json()["paused"]
    assert "ingest:연합 속보" in {spec.key for spec in services.task_specs()}

    services.ingest("연합 속보")
    stored = article_count(services)
    assert stored > 0
    deleted = api.delete(name, headers=ADMIN)
    assert deleted.status_code == 204
    assert [e.name for e in services.source_book.entries()] == ["wire"]
    assert article_count(services) == stored  # its articles stay
    assert api.delete(name, headers=ADMIN).status_code == 404


@pytest.mark.parametrize("method, path", [
    pytest.param("PATCH", "/api/sources/wire", id="edit"),
    pytest.param("DELETE", "/api/sources/wire", id="delete"),
    pytest.param("POST", "/api/sources/wire/pause", id="pause"),
    pytest.param("POST", "/api/sources/wire/resume", id="resume"),
])
def test_a_source_of_the_file_is_read_only(api, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = api.request(method, path, json={"interval": "1m"} if method == "PATCH" else None, headers=ADMIN)
    assert answer.status_code == 409
    assert answer.json()["detail"] == "'wire' comes from the configuration file: change it there"


def test_an_unknown_name_is_404_and_no_token_is_401(api) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/api/sources/nosuch/pause", headers=ADMIN).status_code == 404
    assert api.request("PATCH", "/api/sources/nosuch", json={}, headers=ADMIN).status_code == 404
    assert api.post("/api/sources", json={"name": "x"}).status_code == 401
    assert api.post("/api/sources/test", json={"kind": "feed", "url": "https://x.example"}).status_code == 401


def test_the_test_reads_a_definition_and_stores_nothing(api, services, feed: Site) -> None:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        sources_before = conn.execute(sa.select(sa.func.count()).select_from(db.sources)).scalar_one()
    tested = api.post("/api/sources/test", json={k: v for k, v in definition(feed).items() if k != "name"},
                      headers=ADMIN)
    assert tested.status_code == 200, tested.text
    body = tested.json()
    assert body["source"] == "test" and body["total"] == len(body["items"]) > 0
    services.source_book.add(definition(feed), "test")
    expected = services.source_book.test_source("연합 속보").articles
    first = body["items"][0]
    assert first["id"] == expected[0].id and first["title"] == expected[0].title
    assert first["categories"] == ["economy"] and first["published_at"].endswith("Z") or "+00:00" in first["published_at"]
    assert article_count(services) == 0
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.sources)).scalar_one() == sources_before + 1
        state = conn.execute(sa.select(db.sources).where(db.sources.c.name == "연합 속보")).one()
    assert state.last_checked_at is None and state.etag is None  # a test is not a poll

    broken = api.post("/api/sources/test", json=definition(feed, url=f"{feed.url}/missing.xml"), headers=ADMIN)
    assert broken.status_code == 502 and "404" in broken.json()["detail"]
    unreadable = api.post("/api/sources/test", json=definition(feed, kind="jsonl"), headers=ADMIN)
    assert unreadable.status_code >= 400 and unreadable.status_code != 500


def test_ingest_and_sources_list_see_stored_sources(tmp_path: Path, services, feed: Site) -> None:  # type: ignore[no-untyped-def]
    services.source_book.add(definition(feed), "editor@example.com")
    services.source_book.add(definition(feed, name="paused one"), "editor@example.com")
    services.source_book.pause("paused one", "editor@example.com")
    path = str(tmp_path / "gazette.toml")
    ingested = run_gazette(["--config", path, "ingest", "연합 속보"], expect=0).stdout
    assert ingested.startswith("연합 속보: new (")
    listed = run_gazette(["--config", path, "sources", "list"], expect=0).stdout.splitlines()
    assert listed[0].startswith("wire (from config): new;")
    assert listed[1].startswith("paused one (console): paused;")
    assert listed[2].startswith("연합 속보 (console): ok;")


def test_a_stored_definition_the_file_no_longer_allows_is_listed_and_not_polled(tmp_path: Path, database_url: str,
                                                                                 clock: Clock, feed: Site) -> None:
    import service

    first = service.Components(load_settings(config(tmp_path, database_url), {}), clock=clock)
    first.prepare_database(migrate=True)
    first.source_book.add(definition(feed), "editor@example.com")
    first.close()
    later = service.Components(load_settings(config(tmp_path, database_url, private=False), {}), clock=clock)
    entry = later.source_book.get("연합 속보")
    assert entry.source is None and entry.problem is not None and "allow_private_network" in entry.problem
    assert later.source_book.active() == [later.settings.sources[0]]
    with pytest.raises(UnknownName, match="not valid"):
        later.ingest("연합 속보")
    later.close()


def test_the_book_refuses_what_is_not_its_to_change(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError):
        services.source_book.delete("wire", "x")
    with pytest.raises(UnknownName):
        services.source_book.pause("nosuch", "x")


# --- hot reload --------------------------------------------------------------------------------------------------

def test_a_running_scheduler_picks_up_a_new_source_within_the_reload(tmp_path: Path, database_url: str,
                                                                     feed: Site) -> None:
    import service

    settings = load_settings(config(tmp_path, database_url, lease_ttl="3s"), {"GAZETTE_SCHEDULER_RELOAD": "1s"})
    assert settings.scheduler_reload.total_seconds() == 1
    serving = service.Components(settings, clock=lambda: datetime.now(timezone.utc))  # a scheduler needs real time
    serving.prepare_database(migrate=True)
    runner = serving.scheduler_runner()
    runner.start()
    editor = service.Components(settings, clock=lambda: datetime.now(timezone.utc))  # another process, in effect
    try:
        wait_until(lambda: runner.is_leader, 15, message="the runner did not take the lease")
        assert article_count(serving) == 0
        editor.source_book.add(definition(feed), "editor@example.com")
        wait_until(lambda: article_count(serving) > 0, 15, message="the new source was not polled")
        assert feed.hits["/atom.xml"] >= 1

        editor.source_book.pause("연합 속보", "editor@example.com")
        scheduler = runner._scheduler  # noqa: SLF001  (what jobs the leader holds is the point)
        wait_until(lambda: scheduler.get_job("ingest:연합 속보") is None, 15, message="the paused source kept its job")
        editor.source_book.resume("연합 속보", "editor@example.com")
        wait_until(lambda: scheduler.get_job("ingest:연합 속보") is not None, 15, message="no job after resuming")
        editor.source_book.edit("연합 속보", {"interval": "7m"}, "editor@example.com")
        wait_until(lambda: str(scheduler.get_job("ingest:연합 속보").trigger) == "interval[0:07:00]", 15,
                   message="the new interval was not taken")
        editor.source_book.delete("연합 속보", "editor@example.com")
        wait_until(lambda: scheduler.get_job("ingest:연합 속보") is None, 15, message="the deleted source kept its job")
    finally:
        runner.stop()
        editor.close()
        serving.close()


def test_the_overview_gives_each_source_its_health_and_articles_a_day(services, feed: Site) -> None:  # type: ignore[no-untyped-def]
    services.source_book.add(definition(feed), "editor@example.com")
    services.source_book.add(definition(feed, name="쉬는 중"), "editor@example.com")
    services.source_book.pause("쉬는 중", "editor@example.com")
    services.ingest("연합 속보")
    rows = {row.entry.name: row for row in services.source_book.overview(failure_limit=5)}
    assert [rows[n].health for n in ("wire", "연합 속보", "쉬는 중")] == ["new", "ok", "paused"]
    assert rows["wire"].entry.origin == "config" and rows["연합 속보"].entry.origin == "console"
    published = [a for a in services.store.articles(limit=100)
                 if a.published_at >= services.clock() - __import__("datetime").timedelta(days=7)]
    assert rows["연합 속보"].per_day == pytest.approx(len(published) / 7)
    assert not rows["연합 속보"].needs_attention and not rows["쉬는 중"].needs_attention


def test_metrics_count_the_stored_sources(api, services, feed: Site) -> None:  # type: ignore[no-untyped-def]
    services.source_book.add(definition(feed), "editor@example.com")
    services.ingest("연합 속보")
    text = api.get("/metrics", headers=ADMIN).text
    assert 'gazette_sources{status="ok"} 1.0' in text and 'gazette_sources{status="new"} 1.0' in text
    assert 'source="연합 속보"' in text

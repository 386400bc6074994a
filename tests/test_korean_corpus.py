"""Real Korean feeds' shapes, end to end (issue 13): the generated corpus of tests/korean_corpus.py ingested five
times on fresh stores with four fetch workers, on SQLite and PostgreSQL. Each run must store exactly the corpus's
stories, each once, in the same first section whatever the order of reading; then every feed builds and is served,
with no entry updated before it was published, whatever the store holds.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from lxml import etree

from feeds import db
from newsletter.settings import load_settings
from tests import korean_corpus
from tests.conftest import NOW, Clock, InProcessClient, write_config

ATOM = "{http://www.w3.org/2005/Atom}"
RUNS = 5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> korean_corpus.Corpus:
    return korean_corpus.build(tmp_path_factory.mktemp("corpus"))


def services_for(folder: Path, database_url: str, corpus: korean_corpus.Corpus) -> Any:
    import service

    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder / "gazette.toml", database_url=database_url, mail_url=f"maildir://{folder / 'out'}",
                          extra="\n[fetch]\nworkers = 4\nparse_processes = 0\n")
    # The base configuration's two categories give way to the corpus's five.
    text = re.sub(r"\[\[categories\]\].*", "", config.read_text(), flags=re.S) + corpus.sources_toml
    config.write_text(text)
    services = service.Components(load_settings(config, {}), clock=Clock(NOW))
    services.prepare_database(migrate=True)
    return services


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function making a fresh, migrated database per call (one per run)."""
    from tests.conftest import migrated_sqlite_url

    if request.param == "sqlite":
        yield lambda n: migrated_sqlite_url(tmp_path / f"run{n}", "gazette.db")
    else:
        copies = request.getfixturevalue("postgres_copies")
        yield lambda n: copies()


def test_every_story_once_on_every_run(corpus: korean_corpus.Corpus, fresh_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first_sections: list[dict[str, str]] = []
    for run in range(RUNS):
        services = services_for(tmp_path / f"s{run}", fresh_url(run), corpus)
        try:
            results = services.ingest_many(services.settings.sources, on_result=lambda r: None)
            assert [r.status for r in results if r.status == "error"] == [], [r.line() for r in results]
            stored = services.store.articles(limit=10_000)
            assert len(stored) == corpus.expected_count, f"run {run}: {len(stored)} stories"
            assert len({a.url for a in stored}) == corpus.expected_count
            assert all(a.revision == 1 and a.updated_at >= a.published_at for a in stored)
            first_sections.append({a.url: a.category for a in stored})  # type: ignore[misc]
            by_url = {a.url: a for a in stored}
            for story in corpus.stories:
                article = by_url[story.url]
                assert set(article.categories) == set(story.sections), story.url
            if run == 0:
                check_what_readers_get(services, corpus, stored, results)
        finally:
            services.close()
    for run, sections in enumerate(first_sections):  # the first section: not luck
        differ = {url: (first_sections[0][url], sections[url]) for url in sections if sections[url] != first_sections[0][url]}
        assert not differ, (run, list(differ.items())[:5])


def check_what_readers_get(services: Any, corpus: korean_corpus.Corpus, stored: list[Any], results: list[Any]) -> None:
    """Bylines with roles, no control character, times right, the KST-as-UTC publishers flagged."""
    texts = [a.title + a.summary + a.content_html + (a.byline or "") for a in stored]
    assert not any(re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]|&#(?:x0*1?[0-9a-f]|0*[0-2]?[0-9]|3[01])(?:;|$)", t,
                             re.IGNORECASE) for t in texts)
    assert not any("&amp;lt;" in a.content_html or "&lt;이상한" in a.summary for a in stored)
    roles = Counter(r.role for a in stored for r in a.reporters)
    assert roles["기자"] and roles["특파원"] and roles["전문기자"] and roles["논설위원"]
    assert sum(1 for a in stored if a.byline) >= 0.9 * len(stored)  # in-text bylines read too
    by_url = {a.url: a for a in stored}
    for story in corpus.stories:  # KST wall time printed as UTC: read as it was printed, but flagged
        if story.publisher not in korean_corpus.KST_AS_UTC:
            assert by_url[story.url].published_at == story.published_at
    flagged = {r.source.split("-")[0] for r in results if any("wall_clock_zone" in n for n in r.notes)}
    assert flagged == {f"p{p:02d}" for p in korean_corpus.KST_AS_UTC}
    health = {s.name: s.clock_warning for s in services.store.sources()}
    assert health["p03-all"] and "9 h" in health["p03-all"] and health["p00-all"] is None


def test_reading_kst_as_local_fixes_the_times(corpus: korean_corpus.Corpus, tmp_path: Path,
                                              migrated_sqlite: Path) -> None:
    from tests.conftest import sqlite_copy

    fixed = corpus.sources_toml.replace('name = "p03-all"\n', 'name = "p03-all"\nwall_clock_zone = "Asia/Seoul"\n')
    services = services_for(tmp_path, sqlite_copy(migrated_sqlite, tmp_path), korean_corpus.Corpus(
        corpus.folder, corpus.stories, fixed))
    try:
        [result] = services.ingest_many([services.settings.source("p03-all")], on_result=lambda r: None)
        assert not any("wall_clock_zone" in n for n in result.notes)
        by_url = {a.url: a for a in services.store.articles(limit=1000)}
        for story in corpus.stories:
            if story.publisher == 3:
                assert by_url[story.url].published_at == story.published_at
    finally:
        services.close()


def test_every_feed_builds_and_serves_whatever_the_store_holds(corpus: korean_corpus.Corpus, tmp_path: Path,
                                                                migrated_sqlite: Path) -> None:
    import service
    from tests.conftest import sqlite_copy

    services = services_for(tmp_path, sqlite_copy(migrated_sqlite, tmp_path), corpus)
    try:
        services.ingest_many(services.settings.sources, on_result=lambda r: None)
        with services.engine.begin() as conn:  # a row written before the fix, holding what XML cannot carry
            conn.execute(db.articles.update().where(db.articles.c.id == services.store.articles()[0].id)
                         .values(title="제어\x03문자\x01", summary="요약\x1b", content_html="<p>본문\x00</p>"))
        written = services.publisher.build(tmp_path / "site")
        assert len(written) == 2 * (len(services.publisher.feeds()) * 3 + 1)
        with InProcessClient(service.create_app(services)) as client:
            for info in services.publisher.feeds():
                for fmt in ("rss", "atom", "json"):
                    answer = client.get(f"/feeds/{info.slug}.{fmt}")
                    assert answer.status_code == 200, (info.slug, fmt)
                    if fmt == "atom":
                        for entry in etree.fromstring(answer.content).iter(f"{ATOM}entry"):
                            assert entry.findtext(f"{ATOM}updated") >= entry.findtext(f"{ATOM}published")
                    if fmt == "json":
                        json.loads(answer.content)
    finally:
        services.close()


@pytest.mark.slow
def test_ingest_exits_cleanly_with_its_parse_processes(corpus: korean_corpus.Corpus, tmp_path: Path) -> None:
    """`gazette ingest` with a parse pool, run to its end and stopped with SIGTERM halfway: no traceback either way.
    A real process: the point is how it and its parse processes end."""
    import signal
    import subprocess

    from tests.conftest import gazette_command, migrated_sqlite_url, wait_until

    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                          mail_url=f"maildir://{tmp_path / 'out'}", extra="\n[fetch]\nparse_processes = 2\n")
    config.write_text(re.sub(r"\[\[categories\]\].*", "", config.read_text(), flags=re.S) + corpus.sources_toml)
    run = [*gazette_command(), "--config", str(config)]
    done = subprocess.run([*run, "ingest"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.count("\n") == len(corpus.feeds)
    fresh = {"GAZETTE_DATABASE_URL": migrated_sqlite_url(tmp_path, "fresh.db")}
    again = subprocess.Popen([*run, "ingest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env={**os.environ, **fresh})
    def pool_started() -> list[str]:  # stopped while its parse processes work
        assert again.poll() is None, "the ingest ended before its pool started"
        # Parse processes, not multiprocessing's resource tracker: that one starts with the pool, before the sources
        # are read, and a signal there lands in the middle of a query (`sources()`), not in the ingest's wait.
        return [pid for pid in _children(again.pid) if b"spawn_main" in _cmdline(pid)]

    wait_until(pool_started, 60, interval=0.01, message="the ingest's parse processes did not start")
    again.send_signal(signal.SIGTERM)
    _, stderr = again.communicate(timeout=60)
    assert "Traceback" not in stderr and again.returncode in (0, 128 + signal.SIGTERM), (again.returncode, stderr)
    with sa.create_engine(fresh["GAZETTE_DATABASE_URL"]).connect() as conn:  # a stop is not the sources' failure
        failed = conn.execute(sa.select(db.sources.c.name).where(db.sources.c.consecutive_failures > 0)).scalars().all()
    assert failed == [], failed


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def _children(pid: int) -> list[str]:
    """The process's children (Linux /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    return [c for t in tasks.glob("*/children") for c in t.read_text().split()] if tasks.exists() else []

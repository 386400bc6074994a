"""The schema on SQLite and PostgreSQL: each side's branch builds exactly what the code declares, and a database made
before each side owned its tables (one history, 0001..0011) upgrades in place, rows and all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from feeds import db
from feeds.core import accounts, audit, database, scheduling
from newsletter import db as newsletter_db
from tests.conftest import MIGRATIONS, NOW, gazette_command, migrate, write_config

DECLARED = (scheduling.metadata, accounts.metadata, audit.metadata, db.metadata, newsletter_db.metadata)


def declared_diff(engine: sa.Engine) -> list[Any]:
    """What the live schema and the three declarations (shared layer, content, audience) disagree on."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": lambda name, type_, parent: not (type_ == "table"
                                                             and name == scheduling.SCHEDULER_JOBS_TABLE)})
        return compare_metadata(context, DECLARED)


def snapshot(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every table as the database describes it: columns (type, nullability, server default), keys and indexes."""
    inspector = sa.inspect(engine)
    tables = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        tables[table] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"], c.get("default") and str(c["default"]))
                        for c in inspector.get_columns(table)},  # by name: batch migrations reorder SQLite's columns
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]), tuple(sorted(f["options"].items())))
                                   for f in inspector.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
        }
    return tables


def test_each_side_declares_its_own_tables() -> None:
    owners = [set(metadata.tables) for metadata in DECLARED]
    assert sum(len(tables) for tables in owners) == len(set().union(*owners))  # no table declared twice
    assert owners[0] == {"leases", "task_runs"}
    assert owners[1] == {"console_users", "console_sessions"} and owners[2] == {"audit_log"}
    assert {"articles", "sources", "partners"} <= owners[3] and {"subscribers", "deliveries"} <= owners[4]


def test_migrations_create_exactly_the_declared_schema(engine: sa.Engine) -> None:
    assert declared_diff(engine) == []
    heads = database.head_revisions(MIGRATIONS)
    assert len(heads) == 2  # one per side
    assert database.current_revisions(engine) == heads and database.is_current(engine, MIGRATIONS)


def test_migrate_is_safe_to_run_again(engine: sa.Engine) -> None:
    migrate(engine)
    assert database.is_current(engine, MIGRATIONS)


def fill_legacy(engine: sa.Engine, revision: str) -> None:
    """A source, an article, an edition, a reader who chose it and a delivery, written as the legacy schema at
    `revision` wants them (0008: the reader's edition is a `frequency` column; 0011: a `subscriber_editions` row)."""
    at = NOW - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (slug, name, position) VALUES ('politics', '정치', 0)"))
        conn.execute(sa.text("INSERT INTO sources (id, name, kind, location, category, interval_seconds, "
                             "consecutive_failures, created_at) VALUES (7, 'wire', 'feed', 'https://wire.example/rss', "
                             "'politics', 600, 0, :at)"), {"at": at})
        conn.execute(sa.text(
            "INSERT INTO articles (id, identity, url, title, summary, content_html, category, tags, published_at, "
            "updated_at, fetched_at, changed_at, content_hash, revision, source_id) VALUES ('a1', 'guid:x-1', "
            "'https://news.example.com/1', '기사', '', '', 'politics', '[]', :at, :at, :at, :at, 'h', 1, 7)"), {"at": at})
        if revision == "0008":
            conn.execute(sa.text("INSERT INTO subscribers (id, email, status, categories, frequency, created_at, "
                                 "confirmed_at, consent_method, bounces) VALUES (3, 'Reader@example.com', 'confirmed', "
                                 "'[]', 'daily', :at, :at, 'form', 0)"), {"at": at})
        else:
            conn.execute(sa.text("INSERT INTO subscribers (id, email, email_hash, public_id, status, categories, "
                                 "created_at, confirmed_at, consent_method, bounces) VALUES (3, 'Reader@example.com', "
                                 "'h3', 'p3p3p3p3p3p3p3p3p3p3p3', 'confirmed', '[]', :at, :at, 'form', 0)"), {"at": at})
            conn.execute(sa.text("INSERT INTO subscriber_editions (subscriber_id, edition) VALUES (3, 'daily')"))
        conn.execute(sa.text("INSERT INTO editions (id, name, scheduled_at, period_start, period_end, status, "
                             "created_at) VALUES (1, 'daily', :at, :at, :at, 'done', :at)"), {"at": at})
        conn.execute(sa.text("INSERT INTO deliveries (id, edition_id, subscriber_id, status, articles, attempts) "
                             "VALUES (1, 1, 3, 'sent', 4, 1)"))


@pytest.mark.parametrize("legacy", ["0011", "0008"])
def test_a_database_from_before_the_split_upgrades_in_place(empty_database_url: str, legacy: str) -> None:
    engine = database.make_engine(empty_database_url)
    db.upgrade_legacy(engine, legacy)
    fill_legacy(engine, legacy)
    with pytest.raises(ValueError, match="every side's migrations"):  # half the schema would be left unrecorded
        db.migrate(engine, [db.MIGRATIONS])
    assert database.current_revisions(engine) == {legacy}

    migrate(engine)
    assert database.current_revisions(engine) == database.head_revisions(MIGRATIONS)
    assert declared_diff(engine) == []
    migrate(engine)  # again: nothing to do
    with engine.connect() as conn:
        sources = conn.execute(sa.text("SELECT id, name FROM sources")).all()
        articles = conn.execute(sa.text("SELECT id, title, source_id FROM articles")).all()
        readers = conn.execute(sa.text("SELECT id, email, status FROM subscribers")).all()
        editions = conn.execute(sa.text("SELECT subscriber_id, edition FROM subscriber_editions")).all()
        runs = conn.execute(sa.text("SELECT id, name, status FROM editions")).all()
        deliveries = conn.execute(sa.text("SELECT edition_id, subscriber_id, status, articles FROM deliveries")).all()
    engine.dispose()
    assert [tuple(r) for r in sources] == [(7, "wire")]
    assert [tuple(r) for r in articles] == [("a1", "기사", 7)]
    assert [tuple(r) for r in readers] == [(3, "Reader@example.com", "confirmed")]
    assert [tuple(r) for r in editions] == [(3, "daily")]
    assert [tuple(r) for r in runs] == [(1, "daily", "done")]
    assert [tuple(r) for r in deliveries] == [(1, 3, "sent", 4)]


def test_new_and_upgraded_databases_have_the_same_schema(empty_database_url: str) -> None:
    engine = database.make_engine(empty_database_url)
    db.upgrade_legacy(engine)
    migrate(engine)
    upgraded = snapshot(engine)
    everything = sa.MetaData()
    everything.reflect(engine)
    everything.drop_all(engine)
    assert database.current_revisions(engine) == set()
    migrate(engine)
    fresh = snapshot(engine)
    engine.dispose()
    assert sorted(fresh) == sorted(upgraded)
    assert {t: fresh[t] for t in fresh if fresh[t] != upgraded[t]} == {}


def test_db_upgrade_brings_a_database_from_before_the_split_up(tmp_path: Path) -> None:
    import subprocess

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.make_engine(url)
    db.upgrade_legacy(engine)
    engine.dispose()
    config = write_config(tmp_path / "gazette.toml", database_url=url)
    heads = ",".join(sorted(database.head_revisions(MIGRATIONS)))

    def upgrade() -> str:
        return subprocess.run(gazette_command() + ["--config", str(config), "db", "upgrade"], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    assert upgrade() == f"database at revision {heads} (was 0011)"
    assert upgrade() == f"database at revision {heads}"


def test_a_database_from_before_the_split_serves_after_the_upgrade(tmp_path: Path) -> None:
    """What an operator does on the day: `db upgrade` on yesterday's database, then serve. Its article is in the feed,
    its reader in the admin API, its edition run in the report; nothing was lost or needs doing by hand."""
    import service
    from newsletter.settings import load_settings
    from tests.conftest import InProcessClient

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.make_engine(url)
    db.upgrade_legacy(engine)
    fill_legacy(engine, "0011")
    migrate(engine)
    engine.dispose()
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=url,
                                          extra='[admin]\ntoken = "admin-token-0123456789"\n'), environ={})
    components = service.Components(settings)
    components.prepare_database(migrate=False)  # the schema is current: serving needs no more migrating
    admin = {"Authorization": "Bearer admin-token-0123456789"}
    with InProcessClient(service.create_app(components)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        feed = client.get("/feeds/all.rss")
        assert feed.status_code == 200 and "기사" in feed.text
        readers = client.get("/api/subscribers", headers=admin).json()
        assert [(r["email"], r["status"]) for r in readers["items"]] == [("Reader@example.com", "confirmed")]
        runs = client.get("/api/editions", headers=admin).json()
        assert [(r["name"], r["sent"]) for r in runs["items"]] == [("daily", 1)]
    components.close()


def test_a_process_that_may_not_migrate_refuses_a_schema_behind_the_code(tmp_path: Path) -> None:
    """`serve` on PostgreSQL does not migrate: a schema behind the code stops it with what to do, not a 500 later."""
    import service
    from feeds.errors import SchemaNotCurrent
    from newsletter.settings import load_settings

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.make_engine(url)
    db.upgrade_legacy(engine)  # yesterday's schema, not upgraded
    engine.dispose()
    components = service.Components(load_settings(write_config(tmp_path / "gazette.toml", database_url=url),
                                                  environ={}))
    with pytest.raises(SchemaNotCurrent, match="gazette db upgrade"):
        components.prepare_database(migrate=False)
    assert SchemaNotCurrent.status == 503
    components.close()

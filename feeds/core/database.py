"""The database kit both sides use: one naming convention for their metadata, the UTC column type, the engine, the
dialect's INSERT, and the migration runner.

Each side declares its tables on its own `new_metadata()` and owns an Alembic branch (a folder of revisions). One
Alembic environment (`feeds/core/alembic/`) runs them all: `migrate(engine, locations)` upgrades every head found in
the given folders, so whoever needs the whole schema passes every side's folder. The runner knows no revision of
Gazette's; a side with history of its own to settle first (`feeds.db` and the single history from before the split)
does it before calling `migrate`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from alembic.config import Config

# Constraint and index names are derived, never left to the database, so that migrations can name what they change
# and both dialects agree.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The largest integer both databases store (a signed 64-bit BIGINT). An id past it names nothing: callers check
# it before a query, which would otherwise fail in the driver (OverflowError) instead of finding no row.
MAX_ID = 2**63 - 1

ENVIRONMENT = Path(__file__).with_name("alembic")  # env.py and script.py.mako; the revisions live with each side


def new_metadata() -> MetaData:
    """A `MetaData` for one side's tables, with the naming convention every side shares."""
    return MetaData(naming_convention=NAMING)


def is_storable_id(value: int) -> bool:
    return 0 <= value <= MAX_ID


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, timezone-aware UTC datetimes out, on SQLite and PostgreSQL alike.

    SQLite keeps no zone, so values are normalised to UTC on the way in and tagged UTC on the way out;
    a naive datetime is a bug in the caller and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use timezone-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///` or `postgresql://` URL, tuned for this service.

    SQLite runs in WAL mode with foreign keys on and a busy timeout, so that the web app, the scheduler and
    a CLI command can share the file. PostgreSQL goes through psycopg 3.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def insert_for(bind: Engine | Connection):  # type: ignore[no-untyped-def]
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def alembic_config(locations: Sequence[Path], engine: Engine | None = None) -> Config:
    """Alembic's configuration for the shared environment with `locations` as its version folders (no .ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", _joined(locations))
    config.attributes["engine"] = engine
    return config


def _joined(locations: Sequence[Path]) -> str:
    if not locations:
        raise ValueError("no migration folder given")
    return os.pathsep.join(str(location) for location in locations)


def migrate(engine: Engine, locations: Sequence[Path], revision: str = "heads") -> None:
    """Upgrade to `revision` (default: every head of every branch in `locations`). Safe to run again: applied
    revisions are skipped."""
    from alembic import command

    command.upgrade(alembic_config(locations, engine), revision)


def stamp(engine: Engine, locations: Sequence[Path], revisions: Sequence[str]) -> None:
    """Record `revisions` as the database's revisions, replacing whatever it recorded (nothing is run): for a schema
    that is already there under another history."""
    from alembic import command

    command.stamp(alembic_config(locations, engine), list(revisions), purge=True)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database records (one per branch head); empty for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def head_revisions(locations: Sequence[Path]) -> set[str]:
    """The newest revision of every branch in `locations`."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(locations)).get_heads())


def known_revisions(locations: Sequence[Path]) -> set[str]:
    """Every revision in `locations`."""
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config(locations)).walk_revisions()}


def is_current(engine: Engine, locations: Sequence[Path]) -> bool:
    """Whether the database is at every head of `locations`, and at nothing else."""
    return current_revisions(engine) == head_revisions(locations)

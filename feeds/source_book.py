"""The effective sources: the file's `[[sources]]` (read-only, "from config") and those stored in the database
(added in the console or through `/api/sources`), and what an editor may do with the stored ones.

A stored source is kept as the `[[sources]]` table that would make it and checked by the same rule
(`feeds.settings.build_source`); on top of that rule, a stored source reads a URL (a local `path` is for the file's
sources) and reaches the private network only when the file allows it (`[admin] sources_private_network`): who
may edit sources is not who runs the server. Names are unique across both origins; the file wins should it later
take a stored source's name.

`SourceBook.test` reads a definition now, through the process's fetcher and the source's outbound policy, and
returns its first articles as they would be stored (`feeds.ingest.preview_source`), storing nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import db
from .core.commands import duration_text
from .core.errors import ConfigError
from .errors import BadDefinition, StoreError, UnknownName
from .fetch import Fetcher
from .ingest import IngestPolicy, Preview, preview_source
from .model import HEALTHY, SourceState, source_health
from .settings import Category, SourceSettings, build_source
from .store import ArticleStore

log = logging.getLogger(__name__)

CONFIG = "config"
CONSOLE = "console"
TEST_NAME = "test"  # the name a definition is tested under when it has none yet
_WHERE = "source"


@dataclass(frozen=True)
class ListedSource:
    """One effective source and where it comes from. `source` is None for a stored definition that no longer
    passes the rule (its category left the file): it is listed with its `problem`, and not polled."""

    name: str
    origin: str  # config | console
    definition: Mapping[str, Any]  # as a `[[sources]]` table
    source: SourceSettings | None
    is_paused: bool = False
    problem: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def is_editable(self) -> bool:
        return self.origin == CONSOLE

    @property
    def is_active(self) -> bool:
        """Polled by the scheduler: valid and not paused."""
        return self.source is not None and not self.is_paused

    def record(self) -> dict[str, Any]:
        """What the audit log keeps of it, before and after a change (JSON-able)."""
        return {"name": self.name, "origin": self.origin, "definition": dict(self.definition),
                "paused": self.is_paused}


def source_definition(source: SourceSettings) -> dict[str, Any]:
    """A source as the `[[sources]]` table that makes it (the keys `build_source` reads; defaults left out), so a
    stored or shown definition reads back to the same source."""
    out: dict[str, Any] = {"name": source.name, "kind": source.kind}
    if source.url is not None:
        out["url"] = source.url
    if source.path is not None:
        out["path"] = str(source.path)
    out["interval"] = duration_text(source.interval)
    if source.category is not None:
        out["category"] = source.category
    if source.category_map:
        out["category_map"] = dict(source.category_map)
    if source.allow_private_network:
        out["allow_private_network"] = True
    if source.allow_hosts:
        out["allow_hosts"] = list(source.allow_hosts)
    if source.wall_clock_zone is not None:
        out["wall_clock_zone"] = source.wall_clock_zone
    return out


@dataclass(frozen=True)
class SourceRow:
    """A line of the console's list: the source, its health (or "paused", "invalid") and its recent figures."""

    entry: ListedSource
    health: str  # new | ok | failing | unhealthy | disabled (`source_health`), or paused | invalid
    state: SourceState | None  # None: never synced (a stored source whose definition broke before it was saved)
    per_day: float  # articles published in the last OVERVIEW_DAYS days, a day

    @property
    def needs_attention(self) -> bool:
        return self.health not in (*HEALTHY, "paused")


OVERVIEW_DAYS = 7


class SourceBook:
    """The file's sources and the stored ones, as one list; adding, editing, pausing, deleting and testing the
    stored ones. `by` is who acts (an account's address, or "admin token"); times come from `clock`."""

    def __init__(self, engine: Engine, store: ArticleStore, *, config_sources: Sequence[SourceSettings],
                 categories: Sequence[Category], allow_private_network: bool, fetcher: Fetcher,
                 policy: IngestPolicy, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._store = store
        self._config = tuple(config_sources)
        self._categories = {c.slug for c in categories}
        self._allow_private_network = allow_private_network
        self._fetcher = fetcher
        self._policy = policy
        self._clock = clock

    # --- reading ----------------------------------------------------------------------------------------------

    def entries(self) -> list[ListedSource]:
        """Every effective source: the file's in its order, then the stored ones by name."""
        out = [ListedSource(name=s.name, origin=CONFIG, definition=source_definition(s), source=s)
               for s in self._config]
        taken = {s.name for s in self._config}
        t = db.console_sources
        with self._engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.name)).all()
        for row in rows:
            if row.name in taken:
                log.warning("stored source %r is shadowed by the configuration's source of that name", row.name)
                continue
            out.append(self._listed(row))
        return out

    def active(self) -> list[SourceSettings]:
        """The sources the scheduler polls."""
        return [entry.source for entry in self.entries() if entry.is_active and entry.source is not None]

    def find(self, name: str) -> ListedSource | None:
        config = next((s for s in self._config if s.name == name), None)
        if config is not None:
            return ListedSource(name=name, origin=CONFIG, definition=source_definition(config), source=config)
        t = db.console_sources
        with self._engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return self._listed(row) if row is not None else None

    def get(self, name: str) -> ListedSource:
        found = self.find(name)
        if found is None:
            raise UnknownName(f"no source {name[:200]!r}")
        return found

    def overview(self, failure_limit: int) -> list[SourceRow]:
        """Every effective source with its health, its state (last fetch, next check, last error) and how many
        articles a day it brought over the last `OVERVIEW_DAYS` days (by publication date)."""
        states = {state.name: state for state in self._store.sources()}
        counts = self._store.articles_by_source(self._clock() - timedelta(days=OVERVIEW_DAYS))
        rows = []
        for entry in self.entries():
            state = states.get(entry.name)
            health = ("invalid" if entry.source is None else "paused" if entry.is_paused
                      else source_health(state, failure_limit) if state is not None else "new")
            per_day = counts.get(state.id, 0) / OVERVIEW_DAYS if state is not None else 0.0
            rows.append(SourceRow(entry=entry, health=health, state=state, per_day=per_day))
        return rows

    # --- changing ---------------------------------------------------------------------------------------------

    def add(self, definition: Mapping[str, Any], by: str) -> ListedSource:
        """Store a new source (422 naming the key if the definition is bad, 409 if the name is taken)."""
        source = self.check(definition)
        if any(s.name == source.name for s in self._config):
            raise StoreError(f"{source.name[:200]!r} is a source of the configuration file; choose another name")
        now = self._clock()
        values = {"name": source.name, "definition": source_definition(source), "is_paused": False,
                  "created_at": now, "created_by": by[:320], "updated_at": now, "updated_by": by[:320]}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(db.console_sources).values(**values))
                self._store.sync_sources([source], now, conn=conn)
        except IntegrityError as exc:
            raise StoreError(f"a source named {source.name[:200]!r} exists already") from exc
        log.info("source %s added by %s", source.name, by)
        return self.get(source.name)

    def edit(self, name: str, changes: Mapping[str, Any], by: str) -> tuple[ListedSource, ListedSource]:
        """Change a stored source's keys (a key set to None goes back to its default); (before, after). Its name
        stays: a new name is a new source."""
        before = self._editable(name)
        if changes.get("name", name) != name:
            raise BadDefinition("name", "cannot change; add a source under the new name and delete this one")
        merged = {key: value for key, value in {**before.definition, **changes}.items() if value is not None}
        merged["name"] = name
        source = self.check(merged)
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(update(db.console_sources).where(db.console_sources.c.name == name).values(
                definition=source_definition(source), updated_at=now, updated_by=by[:320]))
            self._store.sync_sources([source], now, conn=conn)
        log.info("source %s edited by %s", name, by)
        return before, self.get(name)

    def pause(self, name: str, by: str) -> tuple[ListedSource, ListedSource]:
        return self._set_paused(name, True, by)

    def resume(self, name: str, by: str) -> tuple[ListedSource, ListedSource]:
        return self._set_paused(name, False, by)

    def delete(self, name: str, by: str) -> ListedSource:
        """Remove a stored source: it is polled no more. Its articles stay, in every feed they were in (and its
        state row stays with them, as for a source removed from the file)."""
        before = self._editable(name)
        with self._engine.begin() as conn:
            conn.execute(delete(db.console_sources).where(db.console_sources.c.name == name))
        log.info("source %s deleted by %s (its articles stay)", name, by)
        return before

    # --- checking and testing -----------------------------------------------------------------------------------

    def check(self, definition: Mapping[str, Any]) -> SourceSettings:
        """`definition` as a stored source: the `[[sources]]` rule, then what a stored source may not do."""
        try:
            source = build_source(_WHERE, dict(definition), self._categories)
        except ConfigError as exc:
            raise BadDefinition(exc.key.removeprefix(_WHERE).lstrip(".") or "source", exc.reason) from exc
        if source.path is not None:
            raise BadDefinition("path", "a source added here reads a URL; a local file is only for the configuration "
                                        "file's sources")
        if source.allow_private_network and not self._allow_private_network:
            raise BadDefinition("allow_private_network",
                                "not allowed for sources added here; the configuration file allows it with "
                                "[admin] sources_private_network = true")
        return source

    def test(self, definition: Mapping[str, Any]) -> Preview:
        """Read a definition now and return its first articles as they would be stored; nothing is stored. The
        name may be left out (a source not added yet)."""
        source = self.check({"name": TEST_NAME, **definition})
        return preview_source(source, fetcher=self._fetcher, now=self._clock(), policy=self._policy)

    def test_source(self, name: str) -> Preview:
        """Read an effective source (of the file or stored) now, under its own policy; nothing is stored."""
        entry = self.get(name)
        if entry.source is None:
            raise BadDefinition("source", entry.problem or "not valid")
        return preview_source(entry.source, fetcher=self._fetcher, now=self._clock(), policy=self._policy)

    # --- inside ---------------------------------------------------------------------------------------------

    def _editable(self, name: str) -> ListedSource:
        entry = self.get(name)
        if not entry.is_editable:
            raise StoreError(f"{name[:200]!r} comes from the configuration file: change it there")
        return entry

    def _set_paused(self, name: str, paused: bool, by: str) -> tuple[ListedSource, ListedSource]:
        before = self._editable(name)
        with self._engine.begin() as conn:
            conn.execute(update(db.console_sources).where(db.console_sources.c.name == name).values(
                is_paused=paused, updated_at=self._clock(), updated_by=by[:320]))
        log.info("source %s %s by %s", name, "paused" if paused else "resumed", by)
        return before, self.get(name)

    def _listed(self, row: Any) -> ListedSource:
        source, problem = None, None
        try:
            source = self.check(row.definition)
        except BadDefinition as exc:
            problem = str(exc)
        return ListedSource(name=row.name, origin=CONSOLE, definition=dict(row.definition), source=source,
                            is_paused=bool(row.is_paused), problem=problem, created_at=row.created_at,
                            created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by)

"""The audit log: every change made through the console or the admin API, who made it, when, what (an action such
as `source.update` and its target, such as `source:연합뉴스`), and the values before and after. Appended, never
edited; admins read and filter it in the console (`/admin/audit`) and the API.

Its table is created by the content branch, like the accounts' (`feeds.core.accounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import JSON, Column, Index, Integer, String, Table, insert, select
from sqlalchemy.engine import Engine

from .accounts import Actor
from .database import UTCDateTime, new_metadata

metadata = new_metadata()

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),  # the user's address, or "admin token"
    Column("actor_kind", String(8), nullable=False),  # user | token | cli | system
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index(None, "at"),
    Index(None, "action"),
)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str
    before: Any
    after: Any


class AuditLog:
    """Every change made through the console or the API: appended, never edited."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, actor: Actor, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        with self._engine.begin() as db:
            db.execute(insert(audit_log).values(at=self._clock(), actor=actor.email[:320], actor_kind=actor.kind,
                                                action=action[:64], target=target[:300], before=_jsonable(before),
                                                after=_jsonable(after)))

    def entries(self, *, action: str | None = None, actor: str | None = None, target: str | None = None,
                before_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """Newest first; `action` matches a prefix (`source.` is every source change), `actor` and `target` a part;
        `before_id` pages on."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        if actor:
            query = query.where(audit_log.c.actor.contains(actor, autoescape=True))
        if target:
            query = query.where(audit_log.c.target.contains(target, autoescape=True))
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        with self._engine.connect() as db:
            return [AuditEntry(r.id, r.at, r.actor, r.actor_kind, r.action, r.target, r.before, r.after)
                    for r in db.execute(query)]

    def actions(self) -> list[str]:
        with self._engine.connect() as db:
            return list(db.execute(select(audit_log.c.action).distinct().order_by(audit_log.c.action)).scalars())


def _jsonable(value: Any) -> Any:
    """Dates as ISO text, tuples as lists: what JSON columns hold on every database."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)

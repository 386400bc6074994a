"""`GET /metrics` in the Prometheus text format (version 0.0.4): a few gauges an operator alerts on.

Each side contributes its own families (`content_metrics` here, `newsletter.metrics` for the audience); the web
route only renders them. Values are read from the database when scraped, so every process reports the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Mapping

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import db
from .guard import check_admin_token
from .settings import Settings
from .store import ArticleStore, source_health


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    kind: str = "gauge"
    samples: tuple[tuple[Mapping[str, str], float], ...] = field(default_factory=tuple)


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines += [f"# HELP {family.name} {family.help}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in family.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{family.name}{{{label_text}}} {value:g}" if label_text else f"{family.name} {value:g}")
    return "\n".join(lines) + "\n"


def content_metrics(settings: Settings, store: ArticleStore, now: datetime) -> list[Family]:
    limit = settings.fetch.failure_limit
    configured = {s.name for s in settings.sources}
    by_status: dict[str, int] = {"ok": 0, "new": 0, "failing": 0, "unhealthy": 0, "disabled": 0}
    failures: list[tuple[Mapping[str, str], float]] = []
    skipped: list[tuple[Mapping[str, str], float]] = []
    last_success: list[tuple[Mapping[str, str], float]] = []
    for state in store.sources():
        if state.name not in configured:
            continue
        by_status[source_health(state, limit)] += 1
        failures.append(({"source": state.name}, state.consecutive_failures))
        skipped.append(({"source": state.name}, state.skipped_items))
        if state.last_success_at is not None:
            last_success.append(({"source": state.name}, state.last_success_at.timestamp()))
    with store.engine.connect() as conn:
        articles = dict(conn.execute(select(db.articles.c.category, func.count()).group_by(db.articles.c.category)).all())
        pushes = dict(conn.execute(select(db.partner_pushes.c.status, func.count())
                                   .group_by(db.partner_pushes.c.status)).all())
    return [
        Family("gazette_articles", "Articles in the store, by category.",
               samples=tuple(({"category": k or ""}, float(v)) for k, v in sorted(articles.items(), key=lambda kv: kv[0] or ""))),
        Family("gazette_sources", "Configured sources by health.",
               samples=tuple(({"status": k}, float(v)) for k, v in by_status.items())),
        Family("gazette_source_consecutive_failures", "Failed polls in a row, per source.", samples=tuple(failures)),
        Family("gazette_source_skipped_items", "Articles of each source left out of feeds because they could not be "
               "rendered (the feeds themselves stay up).", samples=tuple(skipped)),
        Family("gazette_source_last_success_timestamp_seconds", "When each source was last read without error.",
               samples=tuple(last_success)),
        Family("gazette_partner_pushes", "Partner push queue rows by status.",
               samples=tuple(({"status": k}, float(v)) for k, v in sorted(pushes.items()))),
        Family("gazette_scrape_timestamp_seconds", "When these figures were read.", samples=(({}, now.timestamp()),)),
    ]


def route(settings: Settings, families: Callable[[], Iterable[Family]]) -> Route:
    """`GET /metrics`; with `[admin] token` set, Prometheus must send it (`authorization: {credentials: …}`)."""
    def metrics(request: Request) -> Response:
        refusal = check_admin_token(settings.admin_token, request.headers.get("authorization"))
        if settings.admin_token is not None and refusal is not None:  # without a token the figures are open
            return PlainTextResponse(refusal.message + "\n", status_code=refusal.status, headers=dict(refusal.headers))
        return PlainTextResponse(render(families()), media_type="text/plain; version=0.0.4; charset=utf-8",
                                 headers={"Cache-Control": "no-store"})

    return Route("/metrics", metrics, methods=["GET"])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

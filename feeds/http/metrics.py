"""`GET /metrics` in the Prometheus text format (version 0.0.4), behind the admin token when one is set.

One collector (`feeds.metrics.StoreCollector`) reads both sides' figures at each scrape, in a registry of this
app's own (not the global one: several apps in one process must not clash), rendered with `generate_latest` so
numbers are written exactly (a Unix time keeps its seconds).
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..core.http import check_admin_token
from ..metrics import Figures, StoreCollector

# What generate_latest writes. Named here: newer clients' CONTENT_TYPE_LATEST means the 1.0.0 format instead.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsRoute:
    """`GET /metrics`; with `[admin] token` set, Prometheus must send it (`authorization: {credentials: …}`);
    without one the figures are open."""

    def __init__(self, admin_token: str | None, figures: Figures) -> None:
        self._admin_token = admin_token
        self._registry = CollectorRegistry(auto_describe=False)  # this app's own; registering reads nothing yet
        self._registry.register(StoreCollector(figures))

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.metrics, methods=["GET"])]

    def metrics(self, request: Request) -> Response:
        if self._admin_token is not None:
            refusal = check_admin_token(self._admin_token, request.headers.get("authorization"))
            if refusal is not None:  # a scraper reads the status: plain text, not a page
                return PlainTextResponse(refusal.message + "\n", status_code=refusal.status,
                                         headers=dict(refusal.headers))
        return Response(generate_latest(self._registry), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

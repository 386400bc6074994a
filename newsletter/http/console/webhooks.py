"""`/admin/webhooks`: the newsroom's webhook endpoints (admins only): add one (its secret shown once), change its
events, URL or whether it is active, rotate its secret, delete it, read its delivery log, send a test event and retry
a parked delivery.

The rules are `feeds.webhooks.WebhookStore`'s, the same as `/api/webhooks`'. A secret appears only on the page that
answers the POST that made it (no redirect, `Cache-Control: no-store`); the audit log holds its fingerprint. A test
event is sent while the admin waits (at most the sender's timeout) and its answer is shown in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from feeds.core.errors import GazetteError
from feeds.core.http import RowId
from feeds.errors import UnknownName
from feeds.events import TYPES
from feeds.webhook_worker import WebhookSender
from feeds.webhooks import Endpoint, WebhookStore, fingerprint

from .kit import ConsoleKit, acting, posted

LOG_PAGE = 50


class WebhooksPages:
    def __init__(self, kit: ConsoleKit, store: WebhookStore, sender: WebhookSender) -> None:
        self.kit = kit
        self.store = store
        self.sender = sender
        self.allow_private_network = kit.settings.webhooks.allow_private_network

    def router(self) -> APIRouter:
        kit = self.kit
        api = APIRouter(prefix="/admin/webhooks", include_in_schema=False)
        read, change = [Depends(kit.admin)], [Depends(kit.admin_form)]
        api.add_api_route("", self.list, methods=["GET"], dependencies=read)
        api.add_api_route("", self.create, methods=["POST"], dependencies=change)
        api.add_api_route("/{endpoint_id}", self.show, methods=["GET"], dependencies=read)
        api.add_api_route("/{endpoint_id}", self.edit, methods=["POST"], dependencies=change)
        api.add_api_route("/{endpoint_id}/delete", self.delete, methods=["POST"], dependencies=change)
        api.add_api_route("/{endpoint_id}/secret", self.rotate, methods=["POST"], dependencies=change)
        api.add_api_route("/{endpoint_id}/test", self.test, methods=["POST"], dependencies=change)
        api.add_api_route("/{endpoint_id}/deliveries/{delivery_id}/retry", self.retry, methods=["POST"],
                          dependencies=change)
        return api

    def _when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.kit.settings.site.timezone).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"

    def _common(self) -> dict[str, Any]:
        return {"types": TYPES, "when": self._when, "fingerprint": fingerprint}

    def list(self, request: Request, error: str | None = None, status: int = 200,
             values: dict[str, Any] | None = None) -> Response:
        rows = [{"endpoint": e, "counts": self.store.counts(e.id)} for e in self.store.endpoints()]
        return self.kit.page(request, acting(request), "console/webhooks.html", status=status, rows=rows, error=error,
                             values=values or {"name": "", "url": "", "events": []}, **self._common())

    def show(self, request: Request, endpoint_id: RowId, error: str | None = None, status: int = 200,
             values: dict[str, Any] | None = None) -> Response:
        endpoint = self.store.endpoint(endpoint_id)
        before = request.query_params.get("before", "")
        before_id = int(before) if before.isdigit() and len(before) < 12 else None
        rows = self.store.deliveries(endpoint_id, limit=LOG_PAGE + 1, before_id=before_id)
        older = rows[LOG_PAGE - 1].id if len(rows) > LOG_PAGE else None
        shown = values or {"name": endpoint.name, "url": endpoint.url, "events": list(endpoint.events),
                           "is_active": endpoint.is_active}
        return self.kit.page(request, acting(request), "console/webhook.html", status=status, endpoint=endpoint,
                             counts=self.store.counts(endpoint_id), deliveries=rows[:LOG_PAGE], older=older,
                             error=error, values=shown, **self._common())

    def _fields(self, request: Request) -> dict[str, Any]:
        form = posted(request)
        return {"name": str(form.get("name") or "")[:1000], "url": str(form.get("url") or "")[:4000],
                "events": [str(e)[:40] for e in form.getlist("events")][:len(TYPES) + 1],
                "is_active": form.get("is_active") == "on"}

    def create(self, request: Request) -> Response:
        actor, fields = acting(request), self._fields(request)
        try:
            endpoint = self.store.create(fields["name"], fields["url"], fields["events"],
                                         allow_private_network=self.allow_private_network, now=self.kit.clock(),
                                         by=actor.email)
        except GazetteError as exc:
            return self.list(request, error=str(exc), status=exc.status, values=fields)
        self.kit.audit.record(actor, "webhook.create", f"webhook:{endpoint.id}", after=endpoint.facts())
        return self._secret_page(request, endpoint, created=True)

    def edit(self, request: Request, endpoint_id: RowId) -> Response:
        actor, fields = acting(request), self._fields(request)
        try:
            before, after = self.store.update(endpoint_id, fields, allow_private_network=self.allow_private_network,
                                              now=self.kit.clock())
        except GazetteError as exc:
            if exc.status == 404:
                raise
            return self.show(request, endpoint_id, error=str(exc), status=exc.status, values=fields)
        self.kit.audit.record(actor, "webhook.update", f"webhook:{endpoint_id}", before=before.facts(),
                              after=after.facts())
        return self.kit.redirect(f"/admin/webhooks/{endpoint_id}", flash="console_flash_webhook_saved")

    def delete(self, request: Request, endpoint_id: RowId) -> Response:
        before = self.store.delete(endpoint_id)
        self.kit.audit.record(acting(request), "webhook.delete", f"webhook:{endpoint_id}", before=before.facts())
        return self.kit.redirect("/admin/webhooks", flash="console_flash_webhook_deleted")

    def rotate(self, request: Request, endpoint_id: RowId) -> Response:
        before, after = self.store.rotate_secret(endpoint_id, self.kit.clock())
        self.kit.audit.record(acting(request), "webhook.secret_rotate", f"webhook:{endpoint_id}",
                              before=before.facts(), after=after.facts())
        return self._secret_page(request, after)

    def _secret_page(self, request: Request, endpoint: Endpoint, *, created: bool = False) -> Response:
        # The only answer that ever holds the secret: a page, not a redirect (no URL carries it), never stored.
        return self.kit.page(request, acting(request), "console/webhook_secret.html", status=201, endpoint=endpoint,
                             secret=endpoint.secret, created=created, **self._common())

    def test(self, request: Request, endpoint_id: RowId) -> Response:
        endpoint = self.store.endpoint(endpoint_id)
        delivery = self.sender.send_now(endpoint, self.store.add_test(endpoint, self.kit.clock()))
        self.kit.audit.record(acting(request), "webhook.test", f"webhook:{endpoint_id}",
                              after={"delivery_id": delivery.delivery_id, "status": delivery.status,
                                     "response_status": delivery.response_status})
        flash = "console_flash_webhook_test_delivered" if delivery.status == "delivered" \
            else "console_flash_webhook_test_failed"
        return self.kit.redirect(f"/admin/webhooks/{endpoint_id}", flash=flash)

    def retry(self, request: Request, endpoint_id: RowId, delivery_id: str) -> Response:
        self.store.endpoint(endpoint_id)
        delivery = self.store.retry(endpoint_id, delivery_id[:64], self.kit.clock())
        if delivery is None:
            raise UnknownName(f"webhook endpoint {endpoint_id} has no parked delivery {delivery_id[:64]!r}")
        self.kit.audit.record(acting(request), "webhook.retry", f"webhook:{endpoint_id}",
                              after={"delivery_id": delivery.delivery_id, "event": delivery.event})
        return self.kit.redirect(f"/admin/webhooks/{endpoint_id}", flash="console_flash_webhook_retried")

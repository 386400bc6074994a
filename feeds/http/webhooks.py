"""`/api/webhooks`: the newsroom's webhook endpoints, their delivery log, retrying a parked delivery, a test event.

Admins only, reading included (an endpoint's URL and events are the newsroom's plumbing). A secret is made by
Gazette and shown once, in the answer that made it (create, or `POST …/secret` to rotate); lists never show it, and
the audit log holds its fingerprint. Each change is audited with the endpoint before and after. The log sits on the
content side with the event log it reads (`feeds.webhooks`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..core.audit import AuditLog
from ..core.http import Access, ListPage, Paged, RowId, acting, admin_router, problems
from ..core.paging import decode_cursor, page_in_memory, page_of
from ..errors import UnknownName
from ..events import TYPES
from ..webhook_worker import WebhookSender
from ..webhooks import MAX_NAME, MAX_URL, Delivery, Endpoint, WebhookStore, fingerprint

EventType = Literal[TYPES]  # type: ignore[valid-type]


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    is_active: bool
    secret_fingerprint: str  # the secret itself is shown once, when it is made
    created_at: datetime
    created_by: str | None
    updated_at: datetime | None
    deliveries: dict[str, int]  # pending | delivered | parked


class NewSecret(BaseModel):
    endpoint: WebhookOut
    secret: str  # shown this once: sign-check each body with it (see docs/webhooks.md)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME)
    url: str = Field(min_length=1, max_length=MAX_URL)
    events: list[EventType] = Field(min_length=1, max_length=len(TYPES))
    is_active: bool = True


class WebhookChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=len(TYPES))
    is_active: bool | None = None


class DeliveryOut(BaseModel):
    delivery_id: str
    event: str
    event_id: int | None  # null: a test event
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    created_at: datetime
    delivered_at: datetime | None
    parked_at: datetime | None


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(**{k: getattr(d, k) for k in DeliveryOut.model_fields})


class WebhooksApi:
    def __init__(self, store: WebhookStore, sender: WebhookSender, clock: Callable[[], datetime], access: Access,
                 audit: AuditLog, *, allow_private_network: bool) -> None:
        self._store, self._sender, self._clock = store, sender, clock
        self._access, self._audit = access, audit
        self._private = allow_private_network

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/webhooks", "webhooks")
        api.dependencies.append(Depends(self._access.admin))
        api.add_api_route("", self.list, methods=["GET"], response_model=ListPage[WebhookOut],
                          summary="Every webhook endpoint (never its secret), by id")
        api.add_api_route("", self.create, methods=["POST"], response_model=NewSecret, status_code=201,
                          summary="Add an endpoint: it gets the events that happen from now on; its secret is "
                                  "shown once")
        api.add_api_route("/{endpoint_id}", self.get, methods=["GET"], response_model=WebhookOut,
                          responses=problems(404), summary="One endpoint")
        api.add_api_route("/{endpoint_id}", self.edit, methods=["PATCH"], response_model=WebhookOut,
                          responses=problems(404), summary="Change the name, URL, events or whether it is active")
        api.add_api_route("/{endpoint_id}", self.delete, methods=["DELETE"], status_code=204,
                          response_class=Response, responses=problems(404),
                          summary="Delete an endpoint and its delivery log")
        api.add_api_route("/{endpoint_id}/secret", self.rotate, methods=["POST"], response_model=NewSecret,
                          responses=problems(404), summary="A new secret (shown once); the old one signs no more")
        api.add_api_route("/{endpoint_id}/deliveries", self.deliveries, methods=["GET"],
                          response_model=ListPage[DeliveryOut], responses=problems(404),
                          summary="The endpoint's delivery log, newest first")
        api.add_api_route("/{endpoint_id}/deliveries/{delivery_id}/retry", self.retry, methods=["POST"],
                          response_model=DeliveryOut, responses=problems(404),
                          summary="Queue a parked delivery again")
        api.add_api_route("/{endpoint_id}/test", self.test, methods=["POST"], response_model=DeliveryOut,
                          responses=problems(404),
                          summary="Send a `webhook.test` event now; the answer says whether it was taken")
        return api

    def _out(self, endpoint: Endpoint) -> WebhookOut:
        return WebhookOut(id=endpoint.id, name=endpoint.name, url=endpoint.url, events=list(endpoint.events),
                          is_active=endpoint.is_active, secret_fingerprint=fingerprint(endpoint.secret),
                          created_at=endpoint.created_at, created_by=endpoint.created_by,
                          updated_at=endpoint.updated_at, deliveries=self._store.counts(endpoint.id))

    def list(self, page: Paged) -> ListPage[WebhookOut]:
        after = decode_cursor(page.cursor, "webhooks", (int,))
        found = page_in_memory(self._store.endpoints(), page.limit, "webhooks", lambda e: (e.id,), after)
        return ListPage(items=[self._out(e) for e in found.items], next_cursor=found.next_cursor)

    def create(self, request: Request, body: WebhookIn) -> NewSecret:
        actor = acting(request)
        endpoint = self._store.create(body.name, body.url, body.events, allow_private_network=self._private,
                                      now=self._clock(), by=actor.email, is_active=body.is_active)
        self._audit.record(actor, "webhook.create", f"webhook:{endpoint.id}", after=endpoint.facts())
        return NewSecret(endpoint=self._out(endpoint), secret=endpoint.secret)

    def get(self, endpoint_id: RowId) -> WebhookOut:
        return self._out(self._store.endpoint(endpoint_id))

    def edit(self, request: Request, endpoint_id: RowId, body: WebhookChanges) -> WebhookOut:
        before, after = self._store.update(endpoint_id, body.model_dump(exclude_unset=True),
                                           allow_private_network=self._private, now=self._clock())
        self._audit.record(acting(request), "webhook.update", f"webhook:{endpoint_id}", before=before.facts(),
                           after=after.facts())
        return self._out(after)

    def delete(self, request: Request, endpoint_id: RowId) -> Response:
        before = self._store.delete(endpoint_id)
        self._audit.record(acting(request), "webhook.delete", f"webhook:{endpoint_id}", before=before.facts())
        return Response(status_code=204)

    def rotate(self, request: Request, endpoint_id: RowId) -> NewSecret:
        before, after = self._store.rotate_secret(endpoint_id, self._clock())
        self._audit.record(acting(request), "webhook.secret_rotate", f"webhook:{endpoint_id}", before=before.facts(),
                           after=after.facts())
        return NewSecret(endpoint=self._out(after), secret=after.secret)

    def deliveries(self, endpoint_id: RowId, page: Paged,
                   status: Literal["pending", "delivered", "parked"] | None = None) -> ListPage[DeliveryOut]:
        before = decode_cursor(page.cursor, "webhook-deliveries", (int,))
        self._store.endpoint(endpoint_id)
        rows = self._store.deliveries(endpoint_id, status, page.limit + 1,
                                      before_id=None if before is None else int(before[0]))
        found = page_of(rows, page.limit, "webhook-deliveries", lambda d: (d.id,))
        return ListPage(items=[delivery_out(d) for d in found.items], next_cursor=found.next_cursor)

    def retry(self, request: Request, endpoint_id: RowId,
              delivery_id: Annotated[str, Path(max_length=64)]) -> DeliveryOut:
        self._store.endpoint(endpoint_id)
        delivery = self._store.retry(endpoint_id, delivery_id, self._clock())
        if delivery is None:
            raise UnknownName(f"webhook endpoint {endpoint_id} has no parked delivery {delivery_id!r}")
        self._audit.record(acting(request), "webhook.retry", f"webhook:{endpoint_id}",
                           after={"delivery_id": delivery.delivery_id, "event": delivery.event})
        return delivery_out(delivery)

    def test(self, request: Request, endpoint_id: RowId) -> DeliveryOut:
        endpoint = self._store.endpoint(endpoint_id)
        delivery = self._sender.send_now(endpoint, self._store.add_test(endpoint, self._clock()))
        self._audit.record(acting(request), "webhook.test", f"webhook:{endpoint_id}",
                           after={"delivery_id": delivery.delivery_id, "status": delivery.status,
                                  "response_status": delivery.response_status})
        return delivery_out(delivery)

"""The admin API of the audience side: `/api/subscribers` (list, add, export, erase), `/api/editions` (delivery
counts and clicks; pause and resume a run), `/api/bounces` (a mail provider's webhook).

Same access (`Access`: the admin token or a console session), JSON errors and list pages (`ListPage`, `Paged`: a
limit and a cursor) as the content side's API. Adding by admin cannot bring back a suppressed address
(unsubscribed, bounced, complained, erased): that answers 409 and only the person can resubscribe. Each API is a
small class holding what it needs; `router()` registers its bound methods as the endpoints.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from feeds.core.audit import AuditLog
from feeds.core.http import Access, ListPage, Paged, RowId, acting, admin_router, problems
from feeds.core.paging import decode_cursor, page_of

from ..bounces import apply_event, parse_webhook
from ..deliveries import DeliveryStore, EditionStats
from ..errors import DeliveryError, RateLimited, SubscriberError
from ..records import ALERTS, Subscriber
from ..settings import Settings
from ..subscribers import SubscriberStore
from ..subscription import Subscription
from ..tokens import Tokens


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str | None
    status: str
    categories: list[str]
    editions: list[str]
    timezone: str | None
    language: str | None
    confirmed_at: datetime | None
    paused_at: datetime | None
    unsubscribed_at: datetime | None
    ad_consent_at: datetime | None = Field(description="advertising consent given or last re-confirmed; null: none")
    alerts: bool = Field(default=False, description="asked for breaking-news alerts (\"alerts\" among the editions)")


class SubscriberPage(ListPage[SubscriberOut]):
    total: int = Field(description="subscribers matching the filters, all pages together")


class NewSubscriber(BaseModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=100)
    categories: list[str] = Field(default_factory=list, description="category slugs; empty means all")
    editions: list[str] = Field(default_factory=list, max_length=50,
                                description="edition names; empty means the first configured")
    frequency: str | None = Field(default=None, max_length=64,
                                  description="deprecated: the name before `editions` (one edition)")
    alerts: bool = Field(default=False, description="breaking-news alerts too (the same as \"alerts\" among the "
                                                    "editions); with no editions given, alerts only")
    confirmed: bool = Field(default=False, description="consent was obtained elsewhere (recorded as given by an admin); "
                                                       "otherwise the subscriber is pending and gets the confirmation mail")


class AddResult(BaseModel):
    outcome: Literal["added", "updated"]
    subscriber: SubscriberOut


def _out(s: Subscriber) -> SubscriberOut:
    return SubscriberOut(id=s.id, email=s.email, name=s.name, status=s.status, categories=list(s.categories),
                         editions=list(s.editions), timezone=s.timezone, language=s.language,
                         confirmed_at=s.confirmed_at, paused_at=s.paused_at, unsubscribed_at=s.unsubscribed_at,
                         ad_consent_at=s.ad_consent_at, alerts=ALERTS in s.editions)


class SubscribersApi:
    """`/api/subscribers`: list, add (through `Subscription.add_by_operator`), export, erase."""

    def __init__(self, settings: Settings, store: SubscriberStore, flow: Subscription,
                 clock: Callable[[], datetime], access: Access, audit: AuditLog) -> None:
        self.settings = settings
        self.access = access
        self.audit = audit
        self.store = store
        self.flow = flow
        self.clock = clock

    def router(self) -> APIRouter:
        api = admin_router(self.access, "/api/subscribers", "subscribers")
        api.add_api_route("", self.list_subscribers, methods=["GET"], response_model=SubscriberPage,
                          summary="Subscribers, oldest first")
        api.add_api_route("", self.add, methods=["POST"], response_model=AddResult, status_code=201,
                          summary="Add or update one subscriber", responses=problems(409, 429, 502))
        api.add_api_route("/{email_or_id}", self.export, methods=["GET"], responses=problems(404),
                          summary="Everything held about one subscriber (data access request)")
        api.add_api_route("/{email_or_id}", self.erase, methods=["DELETE"], status_code=204, responses=problems(404),
                          summary="Erase one subscriber (keeps a hash so import can't re-add)")
        return api

    def list_subscribers(self, page: Paged,
                         status: Literal["pending", "confirmed", "unsubscribed", "bounced", "complained"] | None = None,
                         edition: Annotated[str | None, Query(max_length=64)] = None,
                         category: Annotated[str | None, Query(max_length=64)] = None,
                         search: Annotated[str | None, Query(max_length=320)] = None) -> SubscriberPage:
        after = decode_cursor(page.cursor, "subscribers", (int,))
        total, rows = self.store.list(status=status, edition=edition, category=category, search=search,
                                      limit=page.limit + 1, after_id=None if after is None else int(after[0]))
        found = page_of(rows, page.limit, "subscribers", lambda s: (s.id,))
        return SubscriberPage(total=total, items=[_out(s) for s in found.items], next_cursor=found.next_cursor)

    def add(self, request: Request, body: NewSubscriber) -> AddResult:
        editions = body.editions or ([body.frequency] if body.frequency else
                                     [] if body.alerts else list(self.store.editions[:1]))
        if body.alerts and ALERTS not in editions:
            editions = [*editions, ALERTS]
        try:
            added = self.flow.add_by_operator(body.email, name=body.name, categories=body.categories,
                                              editions=editions, is_confirmed=body.confirmed)
        except RateLimited as exc:
            raise HTTPException(429, f"{exc}; the confirmation mail was not sent again",
                                headers={"Retry-After": str(exc.retry_after)}) from None
        except SubscriberError as exc:
            raise HTTPException(400, str(exc)) from None
        except DeliveryError as exc:
            raise HTTPException(502, f"the subscriber is pending, but the confirmation mail could not be sent: "
                                     f"{exc}") from None
        if added.subscriber is None:
            raise HTTPException(409, "this address unsubscribed, bounced, complained or was erased: only the person "
                                     "can subscribe it again, through the subscribe form")
        self.audit.record(acting(request), "subscriber.add", f"subscriber:{added.subscriber.id}",
                          after={"outcome": added.outcome, "status": added.subscriber.status,
                                 "categories": list(body.categories or ()), "editions": editions})
        return AddResult(outcome=added.outcome, subscriber=_out(added.subscriber))  # type: ignore[arg-type]

    def export(self, request: Request, email_or_id: str) -> dict[str, Any]:
        subscriber = self._found(email_or_id)
        record = self.store.export(subscriber.id)
        if record is None:
            raise HTTPException(404, f"no subscriber {email_or_id!r}")
        self.audit.record(acting(request), "subscriber.export", f"subscriber:{subscriber.id}")
        return record

    def erase(self, request: Request, email_or_id: str) -> None:
        subscriber = self._found(email_or_id)
        self.store.erase(subscriber.id, now=self.clock())
        # The record says which row was erased, never whose address: the log would otherwise undo the erasure.
        self.audit.record(acting(request), "subscriber.erase", f"subscriber:{subscriber.id}",
                          before={"status": subscriber.status})

    def _found(self, email_or_id: str) -> Subscriber:
        subscriber = self.store.find(email_or_id)
        if subscriber is None:
            raise HTTPException(404, f"no subscriber {email_or_id!r}")
        return subscriber


# --- bounces and complaints from a mail provider's webhook --------------------------------------------------

MAX_BOUNCE_BODY = 1_000_000

_BOUNCE_EVENT = {"type": "object", "required": ["email", "type"], "properties": {
    "email": {"type": "string"}, "type": {"enum": ["bounce", "complaint"]},
    "permanent": {"type": "boolean", "description": "bounces only, required for them: true = hard, false = soft"},
    "reason": {"type": "string"}}}


class EditionOut(BaseModel):
    id: int
    name: str
    scheduled_at: datetime
    status: str = Field(description="sending, paused (only a resume carries it on) or done")
    finished_at: datetime | None
    paused_at: datetime | None = None
    sent: int
    skipped: int
    failed: int
    pending: int  # queued, retrying or held for the night
    clicks: int  # through the edition's signed /r/ links
    clicks_by_article: dict[str, int]


DeliveryStatus = Literal["queued", "sent", "skipped", "failed", "retry", "held"]


class DeliveryOut(BaseModel):
    subscriber_id: int
    email: str | None = Field(description="null once the subscriber was erased")
    status: DeliveryStatus
    attempts: int
    last_error: str | None = Field(description="the server's answer or the reason it was not sent")
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="a retry, or a mail held back for the night")


class DeliveryPage(ListPage[DeliveryOut]):
    total: int = Field(description="deliveries of the edition with this status (all of them without one), all pages "
                                   "together")


class EditionsApi:
    """`/api/editions`: per-edition delivery counts and clicks, each edition's deliveries; pausing and resuming a
    run (`pause(id)`, `resume(id)`: the run's stats after; the resumed run goes on in the background)."""

    def __init__(self, settings: Settings, deliveries: DeliveryStore, clicks: Callable[[str], dict[str, int]],
                 access: Access, *, audit: AuditLog | None = None,
                 pause: Callable[[int], EditionStats] | None = None,
                 resume: Callable[[int], EditionStats] | None = None) -> None:
        self.settings = settings
        self.access = access
        self.deliveries = deliveries
        self.clicks = clicks
        self.audit = audit
        self.pause_run = pause
        self.resume_run = resume

    def router(self) -> APIRouter:
        api = admin_router(self.access, "/api/editions", "digests")
        api.add_api_route("", self.list_editions, methods=["GET"], response_model=ListPage[EditionOut],
                          summary="Recent editions, newest first")
        api.add_api_route("/{edition_id}", self.one, methods=["GET"], response_model=EditionOut,
                          summary="One edition's sent, skipped, failed and clicks", responses=problems(404))
        api.add_api_route("/{edition_id}/deliveries", self.list_deliveries, methods=["GET"],
                          response_model=DeliveryPage, responses=problems(404),
                          summary="One edition's deliveries by subscriber id, e.g. the failed ones with their reasons")
        if self.pause_run is not None and self.resume_run is not None:
            api.add_api_route("/{edition_id}/pause", self.pause, methods=["POST"], response_model=EditionOut,
                              responses=problems(404, 409),
                              summary="Pause a run that is sending: its workers stop taking readers soon after")
            api.add_api_route("/{edition_id}/resume", self.resume, methods=["POST"], response_model=EditionOut,
                              responses=problems(404, 409),
                              summary="Resume a paused run: the rest of it goes out in the background, nobody twice")
        return api

    def pause(self, request: Request, edition_id: RowId) -> EditionOut:
        assert self.pause_run is not None
        return self._changed(request, "edition.pause", edition_id, self.pause_run)

    def resume(self, request: Request, edition_id: RowId) -> EditionOut:
        assert self.resume_run is not None
        return self._changed(request, "edition.resume", edition_id, self.resume_run)

    def _changed(self, request: Request, action: str, edition_id: int,
                 change: Callable[[int], EditionStats]) -> EditionOut:
        """Pause or resume (their errors carry 404 or 409), audited with the status before and after."""
        found = self.deliveries.stats(edition_id)
        if not found:
            raise HTTPException(404, f"no edition {edition_id}")
        after = change(edition_id)
        if self.audit is not None:
            self.audit.record(acting(request), action, f"edition:{edition_id}", before={"status": found[0].status},
                              after={"status": after.status, "name": after.name})
        return self._out(after)

    def list_editions(self, page: Paged) -> ListPage[EditionOut]:
        before = decode_cursor(page.cursor, "editions", (datetime, int))
        after = None if before is None else (before[0], before[1])
        rows = self.deliveries.stats(limit=page.limit + 1, before=after)  # type: ignore[arg-type]
        found = page_of(rows, page.limit, "editions", lambda e: (e.scheduled_at, e.id))
        return ListPage(items=[self._out(e) for e in found.items], next_cursor=found.next_cursor)

    def one(self, edition_id: RowId) -> EditionOut:
        found = self.deliveries.stats(edition_id)
        if not found:
            raise HTTPException(404, f"no edition {edition_id}")
        return self._out(found[0])

    def list_deliveries(self, edition_id: RowId, page: Paged, status: DeliveryStatus | None = None) -> DeliveryPage:
        after = decode_cursor(page.cursor, "deliveries", (int,))
        if not self.deliveries.stats(edition_id):
            raise HTTPException(404, f"no edition {edition_id}")
        total, rows = self.deliveries.rows(edition_id, statuses=(status,) if status else (), limit=page.limit + 1,
                                           after=None if after is None else int(after[0]))
        found = page_of(rows, page.limit, "deliveries", lambda r: (r.subscriber_id,))
        return DeliveryPage(total=total, next_cursor=found.next_cursor, items=[
            DeliveryOut(subscriber_id=r.subscriber_id, email=r.email, status=r.status,  # type: ignore[arg-type]
                        attempts=r.attempts, last_error=r.last_error, sent_at=r.sent_at,
                        next_attempt_at=r.next_attempt_at) for r in found.items])

    def _out(self, e: EditionStats) -> EditionOut:
        by_article = self.clicks(f"{e.name}-{e.id}")
        c = e.counts
        return EditionOut(id=e.id, name=e.name, scheduled_at=e.scheduled_at, status=e.status, finished_at=e.finished_at,
                          paused_at=e.paused_at,
                          sent=c.get("sent", 0), skipped=c.get("skipped", 0), failed=c.get("failed", 0),
                          pending=c.get("queued", 0) + c.get("retry", 0) + c.get("held", 0),
                          clicks=sum(by_article.values()), clicks_by_article=by_article)


class BounceResult(BaseModel):
    applied: int = Field(description="events recorded against a subscriber")
    unknown: int = Field(description="events about addresses that are not subscribers")
    invalid: int = Field(description="events left out; `errors` says why")
    errors: list[str]


async def _json_body(request: Request) -> Any:
    # Read by hand, not as a pydantic body: a malformed body must answer 400 with a problem, not FastAPI's 422.
    raw = await request.body()
    if len(raw) > MAX_BOUNCE_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_BOUNCE_BODY} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the parser's stack
        raise HTTPException(400, "the body is not JSON") from None


class BouncesApi:
    """`POST /api/bounces`: bounces and complaints a mail provider reports (docs/subscribers.md maps SES,
    SendGrid and Mailgun onto it)."""

    def __init__(self, settings: Settings, store: SubscriberStore, clock: Callable[[], datetime],
                 tokens: Tokens, access: Access, audit: AuditLog) -> None:
        self.settings = settings
        self.access = access
        self.audit = audit
        self.store = store
        self.clock = clock
        self.tokens = tokens

    def router(self) -> APIRouter:
        api = admin_router(self.access, "/api/bounces", "bounces")
        api.add_api_route("", self.receive, methods=["POST"], response_model=BounceResult,
                          summary="Record bounces and complaints (one event or a list)",
                          openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                              "oneOf": [_BOUNCE_EVENT, {"type": "array", "items": _BOUNCE_EVENT}]}}}}})
        return api

    def receive(self, request: Request, payload: Annotated[Any, Depends(_json_body)]) -> BounceResult:
        try:
            events, errors = parse_webhook(payload)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        now = self.clock()
        outcomes = [apply_event(event, store=self.store, tokens=self.tokens, now=now,
                                hard_bounce_limit=self.settings.mail.hard_bounce_limit)[0] for event in events]
        result = BounceResult(applied=outcomes.count("applied"), unknown=outcomes.count("unknown"),
                              invalid=len(errors), errors=errors)
        self.audit.record(acting(request), "bounces.receive", "bounces",
                          after=result.model_dump(exclude={"errors"}))
        return result

"""`/admin/subscribers`: readers searched by address, status, edition and category, a page at a time; one reader's
record (choices, consent records, deliveries, bounces); and the data requests an editor answers: add (the reader
gets the confirmation mail, as through the API), export (the filtered list as CSV, one reader as JSON) and erase
(after a confirmation page).

Viewers read; editors change and export (`kit.editor`, `kit.editor_form`). Each change and each export is written
to the audit log by row id; an erasure's entry never names the address (the log would undo the erasure).
Paging is keyset (newest first, `before` = the last id shown), and the count stops at `COUNT_UP_TO`, so a page at
a million readers reads a page. A CSV cell that a spreadsheet would run as a formula gets a leading `'`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

import templates as ui
from feeds.core.database import is_storable_id

from ...db import SUBSCRIBER_STATUSES
from ...errors import DeliveryError, RateLimited, SubscriberError
from ...records import ALERTS, Subscriber, normalise_email
from ...settings import Settings
from ...subscribers import SubscriberStore
from ...subscription import Subscription
from .kit import ConsoleKit, acting, posted

PAGE = 50
COUNT_UP_TO = 10_000  # past this the page says "10,000 or more" instead of counting every match
EXPORT_LIMIT = 100_000  # rows in one CSV export; narrow the filters for the rest
EXPORT_CHUNK = 1_000
MAX_SEARCH = 320
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("id", "email", "name", "status", "editions", "categories", "language", "timezone", "confirmed_at",
               "paused_at", "unsubscribed_at", "ad_consent_at")
# A status's badge colour and its words.
STATUSES = {"confirmed": ("good", "console_subscribers_status_confirmed"),
            "pending": ("warn", "console_subscribers_status_pending"),
            "unsubscribed": ("muted", "console_subscribers_status_unsubscribed"),
            "bounced": ("bad", "console_subscribers_status_bounced"),
            "complained": ("bad", "console_subscribers_status_complained")}
DELIVERIES = {"sent": ("good", "console_subscriber_delivery_sent"), "failed": ("bad", "console_subscriber_delivery_failed"),
              "retry": ("warn", "console_subscriber_delivery_retry"), "held": ("warn", "console_subscriber_delivery_held"),
              "queued": ("muted", "console_subscriber_delivery_queued"),
              "skipped": ("muted", "console_subscriber_delivery_skipped")}


@dataclass(frozen=True)
class Filters:
    """The list's filters as asked for; `problem` is the catalogue key of what was wrong with them, if anything."""

    search: str = ""  # a part of an address
    status: str = ""
    edition: str = ""
    category: str = ""
    before: int | None = None
    problem: str | None = None

    def query(self, **more: Any) -> str:
        pairs = {"q": self.search, "status": self.status, "edition": self.edition, "category": self.category, **more}
        return urlencode({k: v for k, v in pairs.items() if v not in ("", None)})

    @property
    def address(self) -> str | None:
        """The search as a whole address, when it is one: then it is looked up by its hash (an index probe), not
        looked for in every row."""
        if "@" not in self.search or " " in self.search:
            return None
        try:
            return normalise_email(self.search)
        except SubscriberError:
            return None

    def store_filters(self) -> dict[str, Any]:
        """The keywords of `SubscriberStore.list` these filters are."""
        address = self.address
        return {"status": self.status or None, "edition": self.edition or None, "category": self.category or None,
                "search": None if address else self.search or None, "address": address}

    @property
    def is_filtered(self) -> bool:
        return bool(self.search or self.status or self.edition or self.category)


def read_filters(params: Any, *, editions: tuple[str, ...], categories: list[str]) -> Filters:
    """The query string's filters, checked: an unknown status, edition or category, a search with a NUL or longer
    than an address can be, or a cursor that is not a row id, is a problem (422), never a query."""
    search = (params.get("q") or "").strip()
    status, edition, category = (params.get(k) or "" for k in ("status", "edition", "category"))
    before_text = params.get("before") or ""
    problem = None
    if len(search) > MAX_SEARCH or "\x00" in search:
        problem, search = "console_subscribers_bad_search", ""
    if status and status not in SUBSCRIBER_STATUSES or edition and edition not in editions \
            or category and category not in categories:
        problem, status, edition, category = "console_subscribers_bad_filter", "", "", ""
    before = None
    if before_text:
        if before_text.isascii() and before_text.isdigit() and is_storable_id(int(before_text)):
            before = int(before_text)
        else:
            problem = "console_subscribers_bad_filter"
    return Filters(search, status, edition, category, before, problem)


def csv_cell(value: object) -> str:
    """A value as a CSV cell a spreadsheet shows as text: a cell that would start a formula gets a leading `'`."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(s: Subscriber) -> list[str]:
    return [csv_cell(v) for v in (s.id, s.email, s.name, s.status, " ".join(s.editions), " ".join(s.categories),
                                  s.language, s.timezone, s.confirmed_at, s.paused_at, s.unsubscribed_at,
                                  s.ad_consent_at)]


class SubscribersPage:
    def __init__(self, kit: ConsoleKit, settings: Settings, store: SubscriberStore, flow: Subscription) -> None:
        self.kit = kit
        self.settings = settings
        self.store = store
        self.flow = flow

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/subscribers", include_in_schema=False)
        viewer, editor = [Depends(self.kit.viewer)], [Depends(self.kit.editor)]
        api.add_api_route("", self.search, methods=["GET"], dependencies=viewer)
        api.add_api_route("", self.add, methods=["POST"], dependencies=[Depends(self.kit.editor_form)])
        api.add_api_route("/new", self.new, methods=["GET"], dependencies=editor)
        api.add_api_route("/export.csv", self.export_csv, methods=["GET"], dependencies=editor)
        api.add_api_route("/{subscriber_id}", self.show, methods=["GET"], dependencies=viewer)
        api.add_api_route("/{subscriber_id}/export.json", self.export_one, methods=["GET"], dependencies=editor)
        api.add_api_route("/{subscriber_id}/erase", self.confirm_erase, methods=["GET"], dependencies=editor)
        api.add_api_route("/{subscriber_id}/erase", self.erase, methods=["POST"],
                          dependencies=[Depends(self.kit.editor_form)])
        return api

    # --- reading -------------------------------------------------------------------------------------------------

    @property
    def editions(self) -> tuple[str, ...]:
        """What a reader may receive: the configured editions and the breaking-news alerts."""
        return (*self.store.editions, ALERTS)

    def _filters(self, request: Request) -> Filters:
        return read_filters(request.query_params, editions=self.editions,
                            categories=[c.slug for c in self.settings.categories])

    def search(self, request: Request) -> Response:
        filters = self._filters(request)
        total, rows = self.store.list(**filters.store_filters(), limit=PAGE + 1, before_id=filters.before,
                                      newest_first=True, count_up_to=COUNT_UP_TO)
        more, rows = len(rows) > PAGE, rows[:PAGE]
        return self.kit.page(request, acting(request), "console/subscribers.html",
                             status=422 if filters.problem else 200, filters=filters, rows=rows, total=total,
                             is_capped=total >= COUNT_UP_TO, count_up_to=COUNT_UP_TO,
                             next_query=filters.query(before=rows[-1].id) if more else None,
                             statuses=[s for s in SUBSCRIBER_STATUSES if s in STATUSES], editions=self.editions,
                             categories=self.settings.categories, status_words=STATUSES, when=self.when,
                             category_names={c.slug: c.name for c in self.settings.categories},
                             export_limit=EXPORT_LIMIT)

    def show(self, request: Request, subscriber_id: str) -> Response:
        reader = self._reader(subscriber_id)
        if reader is None:
            return self._missing(request)
        history = self.store.history(reader.id, limit=100)
        return self.kit.page(request, acting(request), "console/subscriber.html", reader=reader, history=history,
                             consents=[{**c, "created_at": self.when(datetime.fromisoformat(c["created_at"]))}
                                       for c in self.store.consents(reader.id)], status_words=STATUSES,
                             delivery_words=DELIVERIES, when=self.when,
                             category_names={c.slug: c.name for c in self.settings.categories})

    def new(self, request: Request, error: str | None = None, status: int = 200,
            form: dict[str, Any] | None = None) -> Response:
        return self.kit.page(request, acting(request), "console/subscriber_new.html", status=status, error=error,
                             form=form or {"editions": list(self.store.editions[:1]), "categories": []},
                             editions=self.editions, categories=self.settings.categories)

    # --- changes -------------------------------------------------------------------------------------------------

    def add(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        t = ui.words(self.kit.language(request))
        email = str(form.get("email") or "").strip()
        name = str(form.get("name") or "").strip()[:100] or None
        editions = [str(e) for e in form.getlist("editions")]
        categories = [str(c) for c in form.getlist("categories")]
        again = {"email": email, "name": name or "", "editions": editions, "categories": categories}
        if len(email) > 320 or "\x00" in email or (name and "\x00" in name):
            return self.new(request, error=t["console_subscribers_bad_address"], status=422, form=again)
        try:
            added = self.flow.add_by_operator(email, name=name, categories=categories, editions=editions,
                                              is_confirmed=False)
        except RateLimited:  # the row was saved; only the mail waits for its hour
            found = self.store.find(email)
            if found is not None:
                self.kit.audit.record(actor, "subscriber.add", f"subscriber:{found.id}",
                                      after={"status": found.status, "mail": "rate-limited"})
            return self.new(request, error=t["console_subscribers_add_rate_limited"], status=429, form=again)
        except DeliveryError:
            # The reader is saved as pending; only the mail failed. Say so, on their page.
            found = self.store.find(email)
            if found is None:
                return self.new(request, error=t["console_subscribers_add_mail_failed"], status=502, form=again)
            self.kit.audit.record(actor, "subscriber.add", f"subscriber:{found.id}",
                                  after={"status": found.status, "mail": "failed"})
            return self.kit.redirect(f"/admin/subscribers/{found.id}", flash="console_flash_subscriber_mail_failed")
        except SubscriberError as exc:
            return self.new(request, error=t.text("console_subscribers_add_refused", reason=str(exc)), status=422,
                            form=again)
        if added.subscriber is None:
            return self.new(request, error=t["console_subscribers_add_suppressed"], status=409, form=again)
        self.kit.audit.record(actor, "subscriber.add", f"subscriber:{added.subscriber.id}",
                              after={"outcome": added.outcome, "status": added.subscriber.status,
                                     "categories": list(added.subscriber.categories),
                                     "editions": list(added.subscriber.editions)})
        flash = "console_flash_subscriber_invited" if added.subscriber.status == "pending" else \
            "console_flash_subscriber_updated"
        return self.kit.redirect(f"/admin/subscribers/{added.subscriber.id}", flash=flash)

    def confirm_erase(self, request: Request, subscriber_id: str) -> Response:
        reader = self._reader(subscriber_id)
        if reader is None:
            return self._missing(request)
        return self.kit.page(request, acting(request), "console/subscriber_erase.html", reader=reader)

    def erase(self, request: Request, subscriber_id: str) -> Response:
        actor = acting(request)
        reader = self._reader(subscriber_id)
        if reader is None:
            return self._missing(request)
        if posted(request).get("confirm") != "erase":  # only the confirmation page's button says this
            return self.kit.redirect(f"/admin/subscribers/{reader.id}/erase")
        self.store.erase(reader.id, now=self.kit.clock())
        # The row, never the address: the log would otherwise keep what the reader asked us to forget.
        self.kit.audit.record(actor, "subscriber.erase", f"subscriber:{reader.id}", before={"status": reader.status})
        return self.kit.redirect("/admin/subscribers", flash="console_flash_subscriber_erased")

    # --- exports -------------------------------------------------------------------------------------------------

    def export_csv(self, request: Request) -> Response:
        filters = self._filters(request)
        if filters.problem:
            return self.search(request)
        self.kit.audit.record(acting(request), "subscriber.export_csv", "subscribers",
                              after={"search": filters.search, "status": filters.status, "edition": filters.edition,
                                     "category": filters.category, "limit": EXPORT_LIMIT})
        stamp = self.kit.clock().astimezone(self.settings.site.timezone).strftime("%Y%m%d-%H%M")
        return StreamingResponse(self._csv(filters), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    def _csv(self, filters: Filters) -> Iterator[bytes]:
        """The rows in id order, a chunk per query (one indexed range each), at most EXPORT_LIMIT of them."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield ("\ufeff" + buffer.getvalue()).encode("utf-8")  # the BOM: spreadsheets then read Korean as UTF-8
        after, written = None, 0
        while written < EXPORT_LIMIT:
            _, rows = self.store.list(**filters.store_filters(), limit=min(EXPORT_CHUNK, EXPORT_LIMIT - written),
                                      after_id=after, count_up_to=0)
            if not rows:
                return
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(csv_row(s) for s in rows)
            yield buffer.getvalue().encode("utf-8")
            written += len(rows)
            after = rows[-1].id

    def export_one(self, request: Request, subscriber_id: str) -> Response:
        reader = self._reader(subscriber_id)
        record = self.store.export(reader.id) if reader is not None else None
        if reader is None or record is None:
            return self._missing(request)
        self.kit.audit.record(acting(request), "subscriber.export", f"subscriber:{reader.id}")
        body = json.dumps(record, ensure_ascii=False, indent=1, default=str)
        return Response(body, media_type="application/json; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="subscriber-{reader.id}.json"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    # --- parts ---------------------------------------------------------------------------------------------------

    def _reader(self, subscriber_id: str) -> Subscriber | None:
        if not (subscriber_id.isascii() and subscriber_id.isdigit()):
            return None
        return self.store.get(int(subscriber_id))

    def _missing(self, request: Request) -> Response:
        return self.kit.page(request, acting(request), "console/readers_missing.html", status=404)

    def when(self, moment: datetime | None) -> str:
        """A stored time as the newsroom reads it: the site's zone, to the minute."""
        return moment.astimezone(self.settings.site.timezone).strftime("%Y-%m-%d %H:%M") if moment else "—"

"""`/admin/sources`: every effective source with its origin, health, last fetch, next check and articles a day;
adding, editing, pausing, resuming and deleting the console's sources, and testing any source or an unsaved form.

The file's sources are shown read-only ("from config"). Viewers read; editors and admins change and test (a test
makes Gazette fetch, under the same outbound policy as a poll). Each change goes through the `SourceBook` (the one
rule for a definition) and into the audit log with the definition before and after. Names travel as a query
parameter or a form field, never in the path: a name may hold a slash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

import templates as ui
from feeds.errors import BadDefinition, FeedsError, StoreError
from feeds.ingest import Preview
from feeds.settings import SOURCE_KINDS, Category
from feeds.source_book import ListedSource, SourceBook

from .kit import ConsoleKit, acting, posted

# The form's fields, in the form's order; the text ones are taken as typed (trimmed), the list ones one per line.
TEXT_FIELDS = ("name", "kind", "url", "interval", "category", "wall_clock_zone")
MAX_FIELD = 4000
HEALTH_WORDS = {"new": "console_sources_health_new", "ok": "console_sources_health_ok",
                "failing": "console_sources_health_failing", "unhealthy": "console_sources_health_unhealthy",
                "disabled": "console_sources_health_disabled", "paused": "console_sources_health_paused",
                "invalid": "console_sources_health_invalid"}
KIND_WORDS = {"feed": "console_sources_kind_feed", "html": "console_sources_kind_html",
              "jsonl": "console_sources_kind_jsonl"}


def definition_of(form: Mapping[str, Any]) -> dict[str, Any]:
    """A submitted form as a `[[sources]]` table: empty fields left out, `category_map` from `upstream = slug`
    lines, `allow_hosts` from one host a line. Only the shape is read here; the book checks the rest."""
    out: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = str(form.get(key) or "").strip()[:MAX_FIELD]
        if value:
            out[key] = value
    mapping: dict[str, str] = {}
    for number, line in enumerate(str(form.get("category_map") or "")[:MAX_FIELD].splitlines(), start=1):
        if not line.strip():
            continue
        upstream, equals, slug = line.partition("=")
        if not equals or not upstream.strip() or not slug.strip():
            raise BadDefinition("category_map", f"line {number}: write it as `upstream section = category slug`")
        mapping[upstream.strip()] = slug.strip()
    if mapping:
        out["category_map"] = mapping
    hosts = [line.strip() for line in str(form.get("allow_hosts") or "")[:MAX_FIELD].splitlines() if line.strip()]
    if hosts:
        out["allow_hosts"] = hosts
    if form.get("allow_private_network"):
        out["allow_private_network"] = True
    return out


def form_values(definition: Mapping[str, Any]) -> dict[str, str]:
    """A definition as the form shows it (the inverse of `definition_of`)."""
    values = {key: str(definition.get(key) or "") for key in TEXT_FIELDS}
    values["category_map"] = "\n".join(f"{k} = {v}" for k, v in dict(definition.get("category_map") or {}).items())
    values["allow_hosts"] = "\n".join(str(h) for h in definition.get("allow_hosts") or ())
    values["allow_private_network"] = "on" if definition.get("allow_private_network") else ""
    return values


def local(moment: datetime | None, zone: tzinfo) -> str | None:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment is not None else None


class SourcesPage:
    def __init__(self, kit: ConsoleKit, book: SourceBook, *, failure_limit: int, categories: Sequence[Category],
                 allow_private_network: bool) -> None:
        self.kit = kit
        self.book = book
        self.failure_limit = failure_limit
        self.categories = tuple(categories)
        self.allow_private_network = allow_private_network

    def router(self) -> APIRouter:
        kit = self.kit
        api = APIRouter(prefix="/admin/sources", include_in_schema=False)
        api.add_api_route("", self.show, methods=["GET"], dependencies=[Depends(kit.viewer)])
        api.add_api_route("/new", self.new, methods=["GET"], dependencies=[Depends(kit.editor)])
        api.add_api_route("/new", self.create, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        api.add_api_route("/edit", self.edit, methods=["GET"], dependencies=[Depends(kit.editor)])
        api.add_api_route("/edit", self.update, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        api.add_api_route("/pause", self.pause, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        api.add_api_route("/resume", self.resume, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        api.add_api_route("/delete", self.confirm_delete, methods=["GET"], dependencies=[Depends(kit.editor)])
        api.add_api_route("/delete", self.delete, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        api.add_api_route("/test", self.test, methods=["POST"], dependencies=[Depends(kit.editor_form)])
        return api

    # --- the list ------------------------------------------------------------------------------------------------

    def show(self, request: Request) -> Response:
        zone = self.kit.settings.site.timezone
        rows = [{"row": row, "last_fetch": local(row.state.last_checked_at if row.state else None, zone),
                 "next_check": local(row.state.next_check_at if row.state else None, zone),
                 "last_error_at": local(row.state.last_error_at if row.state else None, zone)}
                for row in self.book.overview(self.failure_limit)]
        rows.sort(key=lambda r: (not r["row"].needs_attention,))  # failing first, else in the book's order
        return self.kit.page(request, acting(request), "console/sources.html", rows=rows, zone=zone.key,
                             health_words=HEALTH_WORDS)

    # --- add and edit --------------------------------------------------------------------------------------------

    def new(self, request: Request) -> Response:
        return self._form(request, None, {"kind": "feed", "interval": "10m"})

    def edit(self, request: Request, name: str) -> Response:
        entry = self.book.get(name)
        return self._form(request, self._editable(entry), form_values(entry.definition))

    def create(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        try:
            definition = definition_of(form)
            if form.get("action") == "test":
                return self._form(request, None, form_values(definition), preview=self.book.test(definition))
            entry = self.book.add(definition, actor.email)
        except FeedsError as exc:
            return self._form(request, None, dict(form), error=exc)
        self.kit.audit.record(actor, "source.create", f"source:{entry.name}", after=entry.record())
        return self.kit.redirect("/admin/sources", flash="console_flash_source_added")

    def update(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        entry = self._editable(self.book.get(str(form.get("original") or "")))
        try:
            definition = definition_of(form)
            if form.get("action") == "test":
                return self._form(request, entry, form_values(definition), preview=self.book.test(definition))
            changes = {key: definition.get(key) for key in (*TEXT_FIELDS, "category_map", "allow_hosts",
                                                             "allow_private_network")}
            before, after = self.book.edit(entry.name, changes, actor.email)
        except FeedsError as exc:
            return self._form(request, entry, dict(form), error=exc)
        self.kit.audit.record(actor, "source.update", f"source:{entry.name}", before=before.record(),
                              after=after.record())
        return self.kit.redirect("/admin/sources", flash="console_flash_source_saved")

    def _form(self, request: Request, entry: ListedSource | None, values: Mapping[str, Any], *,
              preview: Preview | None = None, error: FeedsError | None = None) -> Response:
        t = ui.words(self.kit.language(request))
        problem = None
        if error is not None:
            key = getattr(error, "key", None)
            problem = {"key": key, "text": t.text("console_sources_error", key=key, reason=error.reason)
                       if isinstance(error, BadDefinition) else str(error)}
        return self.kit.page(request, acting(request), "console/source_form.html",
                             status=error.status if error is not None else 200, entry=entry,
                             values={key: str(values.get(key) or "")[:MAX_FIELD] for key in
                                     (*TEXT_FIELDS, "category_map", "allow_hosts", "allow_private_network")},
                             kinds=[(kind, KIND_WORDS[kind]) for kind in SOURCE_KINDS], categories=self.categories, problem=problem,
                             allow_private_network=self.allow_private_network,
                             preview=self._preview(preview) if preview else None)

    # --- pause, resume, delete, test -------------------------------------------------------------------------

    def pause(self, request: Request) -> Response:
        return self._set_paused(request, True)

    def resume(self, request: Request) -> Response:
        return self._set_paused(request, False)

    def _set_paused(self, request: Request, paused: bool) -> Response:
        actor, form = acting(request), posted(request)
        name = str(form.get("name") or "")
        change = self.book.pause if paused else self.book.resume
        before, after = change(name, actor.email)
        self.kit.audit.record(actor, "source.pause" if paused else "source.resume", f"source:{name}",
                              before=before.record(), after=after.record())
        return self.kit.redirect("/admin/sources",
                                 flash="console_flash_source_paused" if paused else "console_flash_source_resumed")

    def confirm_delete(self, request: Request, name: str) -> Response:
        entry = self._editable(self.book.get(name))
        return self.kit.page(request, acting(request), "console/source_delete.html", entry=entry)

    def delete(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        before = self.book.delete(str(form.get("name") or ""), actor.email)
        self.kit.audit.record(actor, "source.delete", f"source:{before.name}", before=before.record())
        return self.kit.redirect("/admin/sources", flash="console_flash_source_deleted")

    def test(self, request: Request) -> Response:
        """Test a saved source (the file's too): its first items as they would be stored; nothing is stored."""
        form = posted(request)
        entry = self.book.get(str(form.get("name") or ""))
        try:
            preview, error = self._preview(self.book.test_source(entry.name)), None
        except FeedsError as exc:
            preview, error = None, str(exc)
        return self.kit.page(request, acting(request), "console/source_test.html", status=200 if error is None else 502,
                             entry=entry, preview=preview, error=error)

    # --- inside ----------------------------------------------------------------------------------------------

    @staticmethod
    def _editable(entry: ListedSource) -> ListedSource:
        if not entry.is_editable:
            raise StoreError(f"{entry.name[:200]!r} comes from the configuration file: change it there")
        return entry

    def _preview(self, preview: Preview) -> dict[str, Any]:
        zone = self.kit.settings.site.timezone
        return {"url": preview.url, "total": preview.total, "notes": preview.notes,
                "items": [{"article": a, "published": local(a.published_at, zone), "updated": local(a.updated_at, zone)}
                          for a in preview.articles]}

"""`/admin/partners`: partners, their licence and terms, keys, usage per day and the push queue.

Anyone in the console reads; only an admin changes (`kit.admin_form`). A partner is created and amended by the same
rule as the CLI's and the API's (`feeds.syndication.register_partner`, `amend_partner`: `settings.build_partner`);
one from the configuration file is shown read-only. A new key is shown once, on the page that answers the POST that
made it (no redirect, `Cache-Control: no-store`), and never again: only its hash is stored, the audit log holds its
fingerprint. "Rotate" is one flow: a new key is made and shown, and that page offers to revoke the old one at once
(partners that fetch with the old key can be switched first, then the old key revoked from the partner's page).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

import templates as ui
from feeds.core.errors import GazetteError
from feeds.core.http import RowId
from feeds.errors import UnknownName
from feeds.partners import KeyInfo, Partner, PartnerStore, partner_feed_url
from feeds.push import PushQueue
from feeds.settings import Settings
from feeds.syndication import amend_partner, register_partner

from .kit import ConsoleKit, acting, posted
from .usage_chart import usage_chart

USAGE_DAYS = 30
PUSHES_SHOWN = 50


def fingerprint(secret: str | None) -> str | None:
    """What the audit log holds of a secret: enough to tell two apart, nothing to use."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8] if secret else None


def terms(partner: Partner) -> dict[str, Any]:
    """A partner's licence and terms as the audit log records them (the callback secret as a fingerprint)."""
    return {"name": partner.name, "categories": list(partner.categories), "full_content": partner.full_content,
            "include_images": partner.include_images, "embargo_minutes": partner.embargo_minutes,
            "utm": dict(partner.utm), "attribution": partner.attribution, "callback_url": partner.callback_url,
            "callback_secret": fingerprint(partner.push_secret), "rate_limit": partner.rate_limit}


def key_facts(info: KeyInfo) -> dict[str, Any]:
    return {"key_id": info.id, "fingerprint": info.fingerprint, "label": info.label}


def _number(text: str) -> int | str:
    """A form's number; anything else is handed on as it is, for the partner rule to name the field it spoils."""
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else text


def partner_fields(form: FormData, slug: str, kept_secret: str | None = None) -> dict[str, Any]:
    """The partner form as `build_partner` takes it: empty fields are left out (their defaults apply); on an edit an
    empty secret keeps the one the partner has."""
    text = {name: str(form.get(name) or "").strip() for name in
            ("name", "embargo_minutes", "rate_limit", "attribution", "callback_url", "callback_secret", "utm")}
    fields: dict[str, Any] = {"slug": slug, "name": text["name"],
                              "categories": [str(c) for c in form.getlist("categories")],
                              "full_content": form.get("content") != "summaries",
                              "include_images": form.get("include_images") == "on"}
    for name in ("embargo_minutes", "rate_limit"):
        if text[name]:
            fields[name] = _number(text[name])
    for name in ("attribution", "callback_url"):
        if text[name]:
            fields[name] = text[name]
    secret = text["callback_secret"] or kept_secret
    if secret and text["callback_url"]:
        fields["callback_secret"] = secret
    if form.get("utm_off") == "on":
        fields["utm"] = {}
    elif text["utm"]:
        pairs = [line.strip() for line in text["utm"].replace("&", "\n").splitlines() if line.strip()]
        fields["utm"] = {name.strip(): value.strip() for name, _, value in (p.partition("=") for p in pairs)}
    return fields


NEW_PARTNER = {"slug": "", "name": "", "categories": [], "full_content": True, "include_images": True,
               "embargo_minutes": 0, "rate_limit": 60, "utm": None, "attribution": "", "callback_url": ""}


def form_values(fields: dict[str, Any]) -> dict[str, Any]:
    """What the partner form shows: `build_partner`'s fields (or a partner's terms) as the inputs hold them; never
    the callback secret."""
    shown = {**NEW_PARTNER, **{k: v for k, v in fields.items() if k != "callback_secret"}}
    utm = shown["utm"]
    shown["utm_off"] = utm == {}
    shown["utm"] = "\n".join(f"{k}={v}" for k, v in utm.items()) if isinstance(utm, dict) else ""
    shown["has_secret"] = bool(fields.get("callback_secret"))
    return shown


class PartnersPages:
    def __init__(self, kit: ConsoleKit, settings: Settings, partners: PartnerStore, pushes: PushQueue) -> None:
        self.kit = kit
        self.settings = settings
        self.partners = partners
        self.pushes = pushes

    def router(self) -> APIRouter:
        kit = self.kit
        api = APIRouter(prefix="/admin/partners", include_in_schema=False)
        read, change = [Depends(kit.viewer)], [Depends(kit.admin_form)]
        api.add_api_route("", self.list, methods=["GET"], dependencies=read)
        api.add_api_route("", self.create, methods=["POST"], dependencies=change)
        api.add_api_route("/{slug}", self.show, methods=["GET"], dependencies=read)
        api.add_api_route("/{slug}", self.amend, methods=["POST"], dependencies=change)
        api.add_api_route("/{slug}/keys", self.create_key, methods=["POST"], dependencies=change)
        api.add_api_route("/{slug}/keys/{key_id}/rotate", self.rotate_key, methods=["POST"], dependencies=change)
        api.add_api_route("/{slug}/keys/{key_id}/revoke", self.confirm_revoke, methods=["GET"],
                          dependencies=[Depends(kit.admin)])
        api.add_api_route("/{slug}/keys/{key_id}/revoke", self.revoke_key, methods=["POST"], dependencies=change)
        api.add_api_route("/{slug}/pushes/{delivery_id}/retry", self.retry_push, methods=["POST"], dependencies=change)
        return api

    # --- reading -----------------------------------------------------------------------------------------------

    def _found(self, slug: str) -> Partner:
        partner = self.partners.partner(slug)
        if partner is None:
            raise UnknownName(f"no partner {slug!r}")
        return partner

    def _when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.settings.site.timezone).strftime("%Y-%m-%d %H:%M") if moment else "-"

    def _common(self) -> dict[str, Any]:
        return {"categories": self.settings.categories, "when": self._when}

    def list(self, request: Request, error: str | None = None, status: int = 200,
             values: dict[str, Any] | None = None) -> Response:
        rows = []
        for partner in self.partners.partners():
            keys = self.partners.keys(partner.slug)
            rows.append({"partner": partner, "active_keys": sum(k.revoked_at is None for k in keys),
                         "last_used_at": max((k.last_used_at for k in keys if k.last_used_at), default=None),
                         "pushes": self.pushes.counts(partner.slug)})
        return self.kit.page(request, acting(request), "console/partners.html", status=status, rows=rows,
                             error=error, values=values or form_values({}), **self._common())

    def show(self, request: Request, slug: str, error: str | None = None, status: int = 200,
             values: dict[str, Any] | None = None) -> Response:
        partner = self._found(slug)
        now = self.kit.clock()
        t = ui.words(self.kit.language(request))
        usage = self.partners.usage(slug, now=now, days=USAGE_DAYS)
        return self.kit.page(
            request, acting(request), "console/partner.html", status=status, partner=partner, error=error,
            values=values or form_values({"slug": slug, **terms(partner), "callback_secret": partner.push_secret}),
            keys=list(reversed(self.partners.keys(slug))),
            chart=usage_chart(usage, self.partners.day(now), USAGE_DAYS, t),
            push_counts=self.pushes.counts(slug), parked=self.pushes.pushes(slug, "parked", PUSHES_SHOWN),
            feed_url=partner_feed_url(self.settings.site.base_url, slug, "all", "json"), **self._common())

    # --- changing ----------------------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        slug = str(form.get("slug") or "").strip()
        fields = partner_fields(form, slug)
        try:
            partner, info, key = register_partner(self.settings, self.partners, fields, self.kit.clock())
        except GazetteError as exc:
            return self.list(request, error=str(exc), status=exc.status, values=form_values(fields))
        self.kit.audit.record(actor, "partner.create", f"partner:{partner.slug}",
                              after={**terms(partner), "first_key": key_facts(info)})
        return self._key_page(request, partner, info, key, created=True)

    def amend(self, request: Request, slug: str) -> Response:
        actor, form = acting(request), posted(request)
        current = self._found(slug)
        fields = partner_fields(form, slug, kept_secret=current.push_secret)
        try:
            before, after = amend_partner(self.settings, self.partners, fields, self.kit.clock())
        except GazetteError as exc:
            return self.show(request, slug, error=str(exc), status=exc.status, values=form_values(fields))
        self.kit.audit.record(actor, "partner.update", f"partner:{slug}", before=terms(before), after=terms(after))
        return self.kit.redirect(f"/admin/partners/{slug}", flash="console_flash_partner_saved")

    def create_key(self, request: Request, slug: str) -> Response:
        actor, form = acting(request), posted(request)
        partner = self._found(slug)
        label = str(form.get("label") or "").strip()[:200] or None
        try:
            info, key = self.partners.add_key(slug, self.kit.clock(), label=label)
        except GazetteError as exc:
            return self.show(request, slug, error=str(exc), status=exc.status)
        self.kit.audit.record(actor, "partner.key_create", f"partner:{slug}", after=key_facts(info))
        return self._key_page(request, partner, info, key)

    def rotate_key(self, request: Request, slug: str, key_id: RowId) -> Response:
        """Rotation's first half: a new key (shown once), on a page that offers to revoke `key_id` next."""
        actor = acting(request)
        partner = self._found(slug)
        old = self._key(slug, key_id)
        t = ui.words(self.kit.language(request))
        info, key = self.partners.add_key(slug, self.kit.clock(), label=t.text("console_partners_rotated_label",
                                                                               id=old.id)[:200])
        self.kit.audit.record(actor, "partner.key_create", f"partner:{slug}",
                              after={**key_facts(info), "replaces": old.id})
        return self._key_page(request, partner, info, key, replaces=old if old.revoked_at is None else None)

    def _key(self, slug: str, key_id: int) -> KeyInfo:
        found = next((k for k in self.partners.keys(slug) if k.id == key_id), None)
        if found is None:
            raise UnknownName(f"partner {slug!r} has no key {key_id}")
        return found

    def _key_page(self, request: Request, partner: Partner, info: KeyInfo, key: str, *, created: bool = False,
                  replaces: KeyInfo | None = None) -> Response:
        # The only answer that ever holds the key: a page, not a redirect (no URL carries it), never stored.
        return self.kit.page(request, acting(request), "console/partner_key.html", status=201, partner=partner,
                             info=info, key=key, created=created, replaces=replaces,
                             feed_url=partner_feed_url(self.settings.site.base_url, partner.slug, "all", "json"),
                             **self._common())

    def confirm_revoke(self, request: Request, slug: str, key_id: RowId) -> Response:
        partner = self._found(slug)
        return self.kit.page(request, acting(request), "console/partner_revoke.html", partner=partner,
                             info=self._key(slug, key_id), **self._common())

    def revoke_key(self, request: Request, slug: str, key_id: RowId) -> Response:
        actor = acting(request)
        self._found(slug)
        before = self._key(slug, key_id)
        info = self.partners.revoke_key(slug, str(key_id), self.kit.clock())
        assert info is not None
        if before.revoked_at is None:
            self.kit.audit.record(actor, "partner.key_revoke", f"partner:{slug}", after=key_facts(info))
        return self.kit.redirect(f"/admin/partners/{slug}", flash="console_flash_key_revoked")

    def retry_push(self, request: Request, slug: str, delivery_id: str) -> Response:
        actor = acting(request)
        self._found(slug)
        push = self.pushes.retry(slug, delivery_id[:64], self.kit.clock())
        if push is None:
            raise UnknownName(f"partner {slug!r} has no parked push {delivery_id[:64]!r}")
        self.kit.audit.record(actor, "partner.push_retry", f"partner:{slug}",
                              after={"delivery_id": push.delivery_id, "article_id": push.article_id})
        return self.kit.redirect(f"/admin/partners/{slug}", flash="console_flash_push_retried")

"""What every console page stands on: who is logged in and with which role, the form and its CSRF token, the page
layout with its navigation and language, redirects after a change, and the audit log.

A page module declares routes on an `APIRouter` (kept out of the OpenAPI document) and asks for an actor with the
role it needs: `kit.viewer`, `kit.editor`, `kit.admin` (`dependencies=[Depends(kit.editor)]`; the handler finds the
actor with `acting(request)`). A request without a live session is sent to the login page
(303); a role too small for the route gets a 403 page and changes nothing. A POST reads its form through
`kit.form` (or `kit.editor_form`, `kit.admin_form`; the handler finds it with `posted(request)`), which refuses a missing or wrong CSRF token (403) before the
handler runs: the session's own token, carried by every form as the field `csrf`. Session cookies are also
`SameSite=Strict` and `HttpOnly` (and `Secure` when the site is served over HTTPS).

The console is server-rendered and uses no JavaScript: its pages pass the same Content-Security-Policy as the
public ones (the guard gives /admin pages `frame-src 'self'` for previews).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote, urlencode

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse

import templates as ui
from feeds.core.accounts import Actor
from feeds.core.audit import AuditLog
from feeds.core.errors import GazetteError
from feeds.core.http import SESSION_COOKIE, Access
from feeds.settings import Settings

LANGUAGE_COOKIE = "gazette_console_lang"
MAX_FORM_FIELDS = 200


@dataclass(frozen=True)
class Section:
    """One entry of the console's navigation: its catalogue key, path and the least role that sees it."""

    key: str
    path: str
    role: str = "viewer"


# The console's sections, in the navigation's order. A page module whose section is not here is reachable by link.
SECTIONS = (
    Section("console_nav_dashboard", "/admin"),
    Section("console_nav_sources", "/admin/sources"),
    Section("console_nav_articles", "/admin/articles"),
    Section("console_nav_subscribers", "/admin/subscribers"),
    Section("console_nav_editions", "/admin/editions"),
    Section("console_nav_alerts", "/admin/alerts"),
    Section("console_nav_partners", "/admin/partners"),
    Section("console_nav_users", "/admin/users", "admin"),
    Section("console_nav_audit", "/admin/audit", "admin"),
    Section("console_nav_webhooks", "/admin/webhooks", "admin"),
)


ROLE_WORDS = {"viewer": "console_role_viewer", "editor": "console_role_editor", "admin": "console_role_admin"}


class LoginRequired(GazetteError):
    """No live console session: the answer is a redirect to the login page (the error mapping sends `headers`)."""

    status = 303

    def __init__(self, next_path: str) -> None:
        super().__init__("log in to the console")
        self.headers = {"Location": "/admin/login?" + urlencode({"next": next_path}), "Cache-Control": "no-store"}


class ConsoleKit:
    def __init__(self, settings: Settings, templates: Environment, access: Access, audit: AuditLog,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.templates = templates
        self.access = access
        self.audit = audit
        self.clock = clock
        self.secure_cookies = settings.site.base_url.startswith("https://")
        self.viewer = self._needs("viewer")
        self.editor = self._needs("editor")
        self.admin = self._needs("admin")
        self.form = self._form(self.viewer)
        self.editor_form = self._form(self.editor)
        self.admin_form = self._form(self.admin)

    # --- who -------------------------------------------------------------------------------------------------------

    def actor(self, request: Request) -> Actor | None:
        return self.access.session_actor(request.cookies.get(SESSION_COOKIE))

    def _needs(self, role: str) -> Callable[[Request], Actor]:
        def dependency(request: Request) -> Actor:
            actor = self.actor(request)
            if actor is None:
                raise LoginRequired(safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else "")))
            if not actor.can(role):
                lang = self.language(request)
                raise HTTPException(403, ui.words(lang).text("console_forbidden", role=role, email=actor.email))
            request.state.actor = actor
            return actor
        dependency.__name__ = f"console_{role}"
        return dependency

    def _form(self, needs: Callable[[Request], Actor]) -> Callable[..., Any]:
        async def dependency(request: Request) -> FormData:
            actor = await run_in_threadpool(needs, request)  # the session is looked up in the database
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
            token = form.get("csrf")
            if not isinstance(token, str) or not hmac.compare_digest(token.encode(), (actor.csrf or "").encode()):
                raise HTTPException(403, ui.words(self.language(request))["console_csrf"])
            request.state.form = form
            return form
        return dependency

    # --- pages -----------------------------------------------------------------------------------------------------

    def language(self, request: Request) -> str:
        """`?lang=`, else the console's language cookie, else the browser's first language we have, else the
        site's."""
        accepted = (request.headers.get("accept-language") or "")[:200].split(",")[0].split(";")[0].split("-")[0]
        return ui.CATALOGUE.pick_language(request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE),
                                          accepted.strip().lower() or None, self.settings.site.language)

    def page(self, request: Request, actor: Actor | None, template: str, *, status: int = 200,
             **context: Any) -> HTMLResponse:
        lang = self.language(request)
        t = ui.words(lang)
        path = request.url.path
        sections = [s for s in SECTIONS if actor is not None and actor.can(s.role)]
        current = max((s for s in sections if path == s.path or (s.path != "/admin" and path.startswith(s.path + "/"))),
                      key=lambda s: len(s.path), default=None)
        flash = request.query_params.get("flash")
        html = self.templates.get_template(template).render(
            site=self.settings.site, lang=lang, t=t, actor=actor, csrf=actor.csrf if actor else None,
            sections=sections, current=current, path=path, role_words=ROLE_WORDS,
            flash=t.get(flash) if flash and flash.startswith("console_flash_") else None,
            other_languages=[code for code in ui.CATALOGUE.languages if code != lang], **context)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict",
                                secure=self.secure_cookies)
        return response

    @staticmethod
    def redirect(path: str, flash: str | None = None) -> RedirectResponse:
        """303 to a console path after a change; `flash` is the key of the words shown there (`console_flash_…`)."""
        target = safe_next(path)
        if flash:
            target += ("&" if "?" in target else "?") + urlencode({"flash": flash})
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})

    def set_session(self, response: HTMLResponse | RedirectResponse, secret: str) -> None:
        response.set_cookie(SESSION_COOKIE, self.access.cookie_value(secret), httponly=True, samesite="strict",
                            secure=self.secure_cookies, path="/")

    def end_session(self, response: HTMLResponse | RedirectResponse) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=self.secure_cookies, path="/")


def acting(request: Request) -> Actor:
    """The actor a `kit.viewer|editor|admin` (or form) dependency found for this request."""
    return request.state.actor


def posted(request: Request) -> FormData:
    """The form a `kit.form` dependency read and checked for this request."""
    return request.state.form


def safe_next(path: str) -> str:
    """A console path to go to after logging in: only ours (no `//host`, no scheme), else the console's home."""
    route = path.split("?")[0]
    if (not (route == "/admin" or route.startswith("/admin/")) or "\\" in path or "/." in route
            or any(c < " " or c == "\x7f" for c in path) or len(path) > 2000):
        return "/admin"
    return quote(path, safe="/?&=%-._~+:,")

"""`POST /articles/{article_id}/share`: "email this article". Parses the form, calls `newsletter.sharing.Sharing`,
answers in JSON when asked for it, else with a page."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..messages import TEXT, pick_language
from ..settings import Settings
from ..sharing import ShareForm, ShareOutcome, Sharing
from .forms import client_ip, with_form

STATUSES = {"sent": 200, "no_article": 404, "too_many": 429, "failed": 503}  # any other outcome: 400
MESSAGES = {"sent": "share_sent", "no_article": "share_no_article", "no_sender": "share_no_sender",
            "links": "share_links", "bad_address": "share_bad_address", "too_many": "share_too_many",
            "failed": "share_failed"}  # outcome -> catalogue key


class SharePage:
    """The endpoint of "email this article" over one `Sharing`."""

    def __init__(self, settings: Settings, sharing: Sharing, templates: Environment) -> None:
        self.settings = settings
        self.sharing = sharing
        self.templates = templates

    def routes(self) -> list[Route]:
        return [Route("/articles/{article_id}/share", with_form(self.share), methods=["POST"])]

    def share(self, request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang") or request.query_params.get("lang"), None, self.settings.site.language)
        sent = ShareForm(sender_name=str(form.get("sender_name", "")), recipient=str(form.get("recipient", "")),
                         note=str(form.get("note", "")))
        outcome = self.sharing.share(request.path_params["article_id"], sent, lang=lang, ip=client_ip(request))
        return self.answer(request, lang, outcome)

    def answer(self, request: Request, lang: str, outcome: ShareOutcome) -> Response:
        status = STATUSES.get(outcome.key, 400)
        message = TEXT[lang][MESSAGES[outcome.key]]
        retry = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error" if status >= 400 else "status": message, **retry}, status_code=status,
                                headers=retry)
        page = self.templates.get_template("pages/notice.html").render(
            site=self.settings.site, lang=lang, t=TEXT[lang], title=TEXT[lang]["share_heading"], message=message,
            path=request.url.path)
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store", **retry})

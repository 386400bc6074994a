"""`GET /archive/{edition}/{token}`: the web copy of a digest, the mail's "view in browser" link
(`newsletter.web_copy` finds and fills the page).

The path keeps its old word "archive": links in mails already sent must keep working.
"""

from __future__ import annotations

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..messages import TEXT, pick_language
from ..settings import Settings
from ..subscription import LinkProblem
from ..web_copy import WebCopies

# LinkProblem.reason -> (status, the words' key); "missing": no such edition or segment.
STATUSES = {"expired": (410, "expired"), "invalid": (400, "invalid"), "missing": (404, "invalid")}


class WebCopyPage:
    """The endpoint of the web copy over one `WebCopies`."""

    def __init__(self, settings: Settings, copies: WebCopies, templates: Environment) -> None:
        self.settings = settings
        self.copies = copies
        self.templates = templates

    def routes(self) -> list[Route]:
        return [Route("/archive/{edition}/{token}", self.web_copy, methods=["GET", "HEAD"])]

    def web_copy(self, request: Request) -> Response:
        try:
            edition_id = int(request.path_params["edition"])
        except ValueError:
            return self.problem(request, LinkProblem("invalid"))
        found = self.copies.web_copy(edition_id, request.path_params["token"])
        if isinstance(found, LinkProblem):
            return self.problem(request, found)
        # Nobody's links are on it; still not for search engines, and shared caches may keep it a while.
        return HTMLResponse(found.html, headers={"Cache-Control": "public, max-age=3600", "X-Robots-Tag": "noindex"})

    def problem(self, request: Request, problem: LinkProblem) -> Response:
        status, reason = STATUSES.get(problem.reason, (400, "invalid"))
        lang = pick_language(request.query_params.get("lang"), None, self.settings.site.language)
        t = TEXT[lang]
        page = self.templates.get_template("pages/notice.html").render(
            site=self.settings.site, lang=lang, t=t, title=t[f"{reason}_title"], message=t[reason],
            path=request.url.path, new_link=reason == "expired")
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

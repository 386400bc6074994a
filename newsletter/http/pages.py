"""The reader's pages: subscribe (double opt-in), confirm, preferences, one-click unsubscribe, coming back, the
two-yearly advertising question, a new link. Each endpoint parses the request, calls one step of
`newsletter.subscription.Subscription` and maps its result to a page.

Korean by default, English with `?lang=en` (or the subscriber's or site's language). Forms carry a CSRF token
(double submit: a random cookie and its signed copy in the form) and a honeypot field; POST /subscribe and POST
/link are limited per client IP here, and per address in the database (one confirmation mail an hour). POST
/unsubscribe/{token} is RFC 8058 one-click: no cookie, no CSRF token, no second step, idempotent. GET
/confirm/{token} only shows a button (mail scanners fetch every link); its POST confirms, once. POST /link answers
before it looks the address up. Every failure is a page that says what to do next, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import Environment
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.core.limits import Limiter

from ..links import Links, ReaderLinks
from ..messages import TEXT, TIMEZONES, pick_language
from ..notices import has_ad_editions
from ..records import ALERTS, Subscriber
from ..settings import Settings
from ..subscription import (
    MAX_NAME,
    ChoicesForm,
    ConfirmLink,
    LinkProblem,
    MailFailed,
    MailSent,
    Refused,
    SignUp,
    Subscription,
    TooMany,
    ip_hash,
)
from ..timing import ZONE_NAMES
from ..tokens import Tokens
from .forms import client_ip, with_form

log = logging.getLogger(__name__)

CSRF_COOKIE = "gazette_csrf"
HONEYPOT = "website"
ALL_ZONES = tuple(sorted(ZONE_NAMES))  # what the time-zone field suggests; any IANA name is accepted

# How each LinkProblem reads: (title key, message key, status, the page offers a new link / the subscribe form).
LINK_PROBLEMS = {"expired": ("expired_title", "expired", 410, "new_link"),
                 "invalid": ("invalid_title", "invalid", 400, "new_link"),
                 "used": ("used_title", "used", 410, "new_link"),
                 "gone": ("invalid_title", "gone", 410, "subscribe_link")}

# What the form got wrong (`Refused.problems`) -> the catalogue's words for it.
REFUSALS = {"categories": "error_categories", "editions": "error_editions", "timezone": "error_timezone",
            "privacy": "error_privacy", "undeliverable": "error_undeliverable"}


class SubscriptionPages:
    """The endpoints of the reader's pages over one `Subscription`; `routes()` lists them for the app."""

    def __init__(self, settings: Settings, flow: Subscription, tokens: Tokens, templates: Environment,
                 per_ip: Limiter) -> None:
        self.settings = settings
        self.flow = flow
        self.tokens = tokens
        self.templates = templates
        self.per_ip = per_ip

    def routes(self) -> list[Route]:
        return [
            Route("/subscribe", self.subscribe_form, methods=["GET", "HEAD"]),
            Route("/subscribe", with_form(self.subscribe), methods=["POST"]),
            Route("/confirm/{token}", self.confirm_page, methods=["GET", "HEAD"]),
            Route("/confirm/{token}", with_form(self.confirm), methods=["POST"]),
            Route("/preferences/{token}", self.preferences, methods=["GET"]),
            Route("/preferences/{token}", with_form(self.save_preferences), methods=["POST"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET", "HEAD"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
            Route("/resubscribe/{token}", with_form(self.resubscribe), methods=["POST"]),
            Route("/consent/{token}", self.keep_page, methods=["GET", "HEAD"]),
            Route("/consent/{token}", with_form(self.keep), methods=["POST"]),
            Route("/link", self.link_form, methods=["GET"]),
            Route("/link", with_form(self.ask_link), methods=["POST"]),
        ]

    # --- subscribe ------------------------------------------------------------------------------------------

    def subscribe_form(self, request: Request) -> Response:
        return self.page(request, "subscribe.html", self.language_of(request),
                         values={"email": request.query_params.get("email", "")[:320],
                                 "categories": sorted(c.slug for c in self.settings.categories),
                                 "editions": [e.name for e in self.settings.digests][:1],
                                 "timezone": self.settings.site.timezone.key})

    def subscribe(self, request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang"), None, self.settings.site.language)
        t = TEXT[lang]
        values = {"email": form.get("email", "")[:320], "name": form.get("name", "")[:MAX_NAME],
                  "categories": form.getlist("categories"), "editions": form.getlist("editions"),
                  "timezone": form.get("timezone", "")[:64], "privacy": bool(form.get("privacy")),
                  "ads": bool(form.get("ads"))}
        wait = self.per_ip.hit(client_ip(request))
        if wait:
            return self.too_many(request, lang, wait)
        if not self.is_csrf_ok(request, form):
            return self.page(request, "subscribe.html", lang, status=403, errors=[t["error_csrf"]], values=values)
        if form.get(HONEYPOT):  # a bot filled the field people never see: answer as usual, do nothing
            log.info("subscribe: honeypot filled from %s; ignored",
                     ip_hash(self.settings.signing_key, client_ip(request)))
            return self.notice(request, lang, t["check_inbox_title"], t["check_inbox"].format(email=values["email"]))
        signup = SignUp(email=values["email"], choices=choices_form(form, with_name=True),
                        has_agreed=bool(form.get("privacy")))
        result = self.flow.subscribe(signup, lang=lang, ip=client_ip(request))
        if isinstance(result, Refused):
            return self.page(request, "subscribe.html", lang, status=400, errors=self.problems(result, lang),
                             values=values)
        if isinstance(result, TooMany):
            return self.too_many(request, lang, result.retry_after, "error_rate_address")
        if isinstance(result, MailFailed):
            return self.notice(request, lang, t["subscribe_title"], t["error_send"], status=503)
        assert isinstance(result, MailSent)
        return self.notice(request, lang, t["check_inbox_title"], t["check_inbox"].format(email=result.email))

    # --- confirm --------------------------------------------------------------------------------------------

    def confirm_page(self, request: Request) -> Response:
        # A GET changes nothing: mail scanners and link previews open every link. The page's button POSTs.
        link = self.flow.confirmation_of(request.path_params["token"])
        if isinstance(link, LinkProblem):
            return self.link_problem(request, self.language_of(request), link)
        return self.confirm_form(request, self.link_language(request, link), link)

    def confirm(self, request: Request, form: Any) -> Response:
        link = self.flow.confirmation_of(request.path_params["token"])
        if isinstance(link, LinkProblem):
            return self.link_problem(request, self.language_of(request), link)
        lang = self.link_language(request, link)
        result = self.flow.confirm(link, lang=lang, has_agreed=bool(form.get("privacy")), ip=client_ip(request))
        if isinstance(result, Refused):
            return self.confirm_form(request, lang, link, 400, errors=self.problems(result, lang))
        if isinstance(result, LinkProblem):
            return self.link_problem(request, lang, result)
        return self.confirmed_page(request, lang, result)

    def link_language(self, request: Request, link: ConfirmLink) -> str:
        return pick_language(request.query_params.get("lang"), link.choices.language, self.settings.site.language)

    def confirm_form(self, request: Request, lang: str, link: ConfirmLink, status: int = 200,
                     **context: Any) -> Response:
        return self.page(request, "confirm.html", lang, status, email=link.subscriber.email,
                         asks_privacy=not link.agreed, chosen=names_of(self.settings, link.choices.categories),
                         chosen_editions=edition_labels(self.settings, link.choices.editions, lang), **context)

    def confirmed_page(self, request: Request, lang: str, subscriber: Subscriber, **context: Any) -> Response:
        return self.page(request, "confirmed.html", lang, subscriber=subscriber,
                         chosen=names_of(self.settings, subscriber.categories),
                         chosen_editions=edition_labels(self.settings, subscriber.editions, lang),
                         links=self.links(subscriber), **context)

    # --- preferences ----------------------------------------------------------------------------------------

    def preferences(self, request: Request) -> Response:
        reader = self.flow.reader_of("preferences", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        return self.preferences_page(request, reader, self.language_of(request, reader))

    def save_preferences(self, request: Request, form: Any) -> Response:
        reader = self.flow.reader_of("preferences", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        lang = pick_language(form.get("lang"), reader.language, self.settings.site.language)
        if not self.is_csrf_ok(request, form):
            return self.preferences_page(request, reader, lang, 403, errors=[TEXT[lang]["error_csrf"]])
        result = self.flow.save_preferences(reader, choices_form(form, with_name=False),
                                            is_paused=bool(form.get("paused")), lang=lang, ip=client_ip(request))
        if isinstance(result, Refused):
            return self.preferences_page(request, reader, lang, 400, errors=self.problems(result, lang))
        if isinstance(result, LinkProblem):
            return self.link_problem(request, lang, result)
        return self.preferences_page(request, result, lang, saved=True)

    def preferences_page(self, request: Request, subscriber: Subscriber, lang: str, status: int = 200,
                         **context: Any) -> Response:
        values = {"categories": list(subscriber.categories), "editions": list(subscriber.editions),
                  "timezone": subscriber.timezone or self.settings.site.timezone.key,
                  "paused": subscriber.paused_at is not None, "ads": subscriber.ad_consent_at is not None}
        return self.page(request, "preferences.html", lang, status, subscriber=subscriber, values=values,
                         links=self.links(subscriber), **context)

    # --- unsubscribe and back -------------------------------------------------------------------------------

    def unsubscribe_page(self, request: Request) -> Response:
        reader = self.flow.reader_of("unsubscribe", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        return self.page(request, "unsubscribe.html", self.language_of(request, reader), subscriber=reader,
                         is_done=reader.status != "confirmed")

    def unsubscribe(self, request: Request) -> Response:
        # RFC 8058: the body is "List-Unsubscribe=One-Click" from a mail client, or the page's button; either way
        # the request itself is the decision.
        reader = self.flow.reader_of("unsubscribe", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        lang = self.language_of(request, reader)
        result = self.flow.unsubscribe(reader, lang=lang)
        if isinstance(result, LinkProblem):
            return self.link_problem(request, lang, result)
        response = self.page(request, "unsubscribe.html", lang, subscriber=result.subscriber, is_done=True)
        if result.follow_up is not None:  # the mail about it goes after the answer
            response.background = BackgroundTask(result.follow_up)
        return response

    def resubscribe(self, request: Request, form: Any) -> Response:
        reader = self.flow.reader_of("unsubscribe", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        lang = pick_language(form.get("lang"), reader.language, self.settings.site.language)
        if not self.is_csrf_ok(request, form):
            return self.page(request, "unsubscribe.html", lang, 403, subscriber=reader, is_done=True,
                             errors=[TEXT[lang]["error_csrf"]])
        result = self.flow.resubscribe(reader, lang=lang, ip=client_ip(request))
        if isinstance(result, LinkProblem):
            return self.link_problem(request, lang, result)
        return self.confirmed_page(request, lang, result, is_again=True)

    # --- the two-yearly advertising question (정보통신망법 §50⑧) --------------------------------------------

    def keep_page(self, request: Request) -> Response:
        reader = self.flow.reader_of("consent", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        return self.page(request, "keep.html", self.language_of(request, reader), subscriber=reader, is_done=False,
                         links=self.links(reader))

    def keep(self, request: Request, form: Any) -> Response:
        reader = self.flow.reader_of("consent", request.path_params["token"])
        if isinstance(reader, LinkProblem):
            return self.link_problem(request, self.language_of(request), reader)
        lang = pick_language(form.get("lang"), reader.language, self.settings.site.language)
        if not self.is_csrf_ok(request, form):
            return self.page(request, "keep.html", lang, 403, subscriber=reader, is_done=False,
                             errors=[TEXT[lang]["error_csrf"]], links=self.links(reader))
        result = self.flow.keep_ads(reader, lang=lang, ip=client_ip(request))
        if isinstance(result, LinkProblem):
            return self.link_problem(request, lang, result)
        return self.page(request, "keep.html", lang, subscriber=result, is_done=True, links=self.links(result))

    # --- a new link -----------------------------------------------------------------------------------------

    def link_form(self, request: Request) -> Response:
        return self.page(request, "link.html", self.language_of(request), values={"email": ""})

    def ask_link(self, request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang"), None, self.settings.site.language)
        t = TEXT[lang]
        email = form.get("email", "")[:320]
        wait = self.per_ip.hit(client_ip(request))
        if wait:
            return self.too_many(request, lang, wait)
        if not self.is_csrf_ok(request, form):
            return self.page(request, "link.html", lang, 403, errors=[t["error_csrf"]], values={"email": email})
        # The answer goes out before the address is even looked up, the same for everyone and in the same time:
        # neither its words nor its timing may tell who is subscribed.
        answer = self.notice(request, lang, t["link_title"], t["link_sent"].format(email=email))
        if not form.get(HONEYPOT):
            answer.background = BackgroundTask(self.flow.send_new_link, email, lang)
        return answer

    # --- mapping results to pages ---------------------------------------------------------------------------

    def language_of(self, request: Request, subscriber: Subscriber | None = None) -> str:
        return pick_language(request.query_params.get("lang"), subscriber.language if subscriber else None,
                             self.settings.site.language)

    def links(self, subscriber: Subscriber) -> ReaderLinks:
        return Links(self.settings.site.base_url, self.tokens).for_reader(subscriber.public_id)

    def is_csrf_ok(self, request: Request, form: Any) -> bool:
        return self.tokens.is_csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf"))

    def page(self, request: Request, name: str, lang: str, status: int = 200, headers: dict[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        """A page; forms on it get a CSRF token bound to the cookie (set here when the client has none)."""
        settings = self.settings
        cookie = request.cookies.get(CSRF_COOKIE) or self.tokens.new_csrf_secret()
        editions = [{"name": e.name, "label": e.label_in(lang), "description": e.description_in(lang),
                     "ads": e.has_ads} for e in settings.digests]
        html = self.templates.get_template(f"pages/{name}").render(
            site=settings.site, lang=lang, t=TEXT[lang], csrf=self.tokens.csrf_field(cookie), honeypot=HONEYPOT,
            categories=[{"slug": c.slug, "name": c.name} for c in settings.categories], editions=editions,
            timezones=TIMEZONES, all_zones=ALL_ZONES, asks_ads=has_ad_editions(settings), path=request.url.path,
            **context)
        response = HTMLResponse(html, status_code=status, headers=headers)
        response.headers["Cache-Control"] = "no-store"
        if request.cookies.get(CSRF_COOKIE) != cookie:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", path="/",
                                secure=request.url.scheme == "https")  # behind a proxy: X-Forwarded-Proto
        return response

    def notice(self, request: Request, lang: str, title: str, message: str, status: int = 200,
               **context: Any) -> HTMLResponse:
        return self.page(request, "notice.html", lang, status, title=title, message=message, **context)

    def link_problem(self, request: Request, lang: str, problem: LinkProblem) -> HTMLResponse:
        title, message, status, offer = LINK_PROBLEMS[problem.reason]
        return self.notice(request, lang, TEXT[lang][title], TEXT[lang][message], status=status, **{offer: True})

    def too_many(self, request: Request, lang: str, seconds: int, key: str = "error_rate") -> HTMLResponse:
        minutes = max(1, (seconds + 59) // 60)
        return self.notice(request, lang, TEXT[lang]["subscribe_title"], TEXT[lang][key].format(minutes=minutes),
                           status=429, headers={"Retry-After": str(seconds)})

    @staticmethod
    def problems(refused: Refused, lang: str) -> list[str]:
        t = TEXT[lang]
        return [f"{t['email']}: {t['error_email']}" if key == "email" else t[REFUSALS[key]] for key in refused.problems]


def choices_form(form: Any, *, with_name: bool) -> ChoicesForm:
    """The choice fields of a subscribe or preferences form, as sent."""
    return ChoicesForm(categories=tuple(form.getlist("categories")), editions=tuple(form.getlist("editions")),
                       timezone=form.get("timezone") or "", name=form.get("name", "") if with_name else "",
                       ads=bool(form.get("ads")))


def names_of(settings: Settings, slugs: tuple[str, ...]) -> list[str]:
    """The configured names of category slugs (a slug no longer configured stands for itself)."""
    names = {c.slug: c.name for c in settings.categories}
    return [names.get(slug, slug) for slug in slugs]


def edition_labels(settings: Settings, names: tuple[str, ...], lang: str) -> list[str]:
    """The labels of edition names in `lang` (a name no longer configured stands for itself)."""
    labels = {e.name: e.label_in(lang) for e in settings.digests} | {ALERTS: TEXT[lang]["alerts_label"]}
    return [labels.get(name, name) for name in names]

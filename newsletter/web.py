"""The reader's pages: subscribe (double opt-in), confirm, preferences, one-click unsubscribe, a new link.

Korean by default, English with `?lang=en` (or the subscriber's or site's language). Forms carry a CSRF token
(double submit: a random cookie and its signed copy in the form) and a honeypot field; POST /subscribe is limited
per client IP here and per address in the database (one confirmation mail an hour). POST /unsubscribe/{token} is
RFC 8058 one-click: no cookie, no CSRF token, no second step, idempotent. GET /confirm/{token} only shows a
button (mail scanners fetch every link); its POST confirms, once. POST /link answers before it looks the address up.
Every failure is a page that says what to do next, never a 500.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from jinja2 import Environment
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.settings import Settings

from .errors import DeliveryError, LinkUsed, RateLimited, SubscriberError, TokenError
from feeds.core.http import RateLimiter
from .messages import TEXT, TIMEZONES, pick_language
from .notices import Notices, consent_words, has_ad_editions
from .timing import ZONE_NAMES, is_zone
from .subscribers import Choices, Consent, LinkOwner, Subscriber, SubscriberStore, normalise_email
from .tokens import Tokens

log = logging.getLogger(__name__)

CSRF_COOKIE = "gazette_csrf"
HONEYPOT = "website"
MAX_NAME = 100
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PageLinks:
    """The signed links of one subscriber."""

    preferences: str
    unsubscribe: str


@dataclass(frozen=True)
class ConfirmLink:
    """What a confirmation link carries: whom (by opaque id), the nonce it must match, the choices made."""

    subscriber: Subscriber
    nonce: str | None
    choices: Choices
    agreed: bool  # the required consent was given on our form; if not (an operator added them), the page asks


ALL_ZONES = tuple(sorted(ZONE_NAMES))  # what the time-zone field suggests; any IANA name is accepted


def subscriber_links(settings: Settings, tokens: Tokens, subscriber: Subscriber) -> PageLinks:
    base = settings.site.base_url
    return PageLinks(preferences=f"{base}/preferences/{tokens.for_subscriber('preferences', subscriber.public_id)}",
                     unsubscribe=f"{base}/unsubscribe/{tokens.for_subscriber('unsubscribe', subscriber.public_id)}")


def ip_hash(signing_key: str, ip: str) -> str:
    """A keyed hash of the client IP: enough to show consent came from one place, useless to find the person."""
    return hashlib.blake2b(ip.encode(), key=signing_key.encode()[:64], digest_size=16).hexdigest()


def routes(settings: Settings, store: SubscriberStore, tokens: Tokens, templates: Environment,
           clock: Callable[[], datetime], notices: Notices, per_ip: RateLimiter | None = None) -> list[Route]:
    categories = [{"slug": c.slug, "name": c.name} for c in settings.categories]
    known = {c.slug for c in settings.categories}
    editions_known = [e.name for e in settings.digests]
    limiter = per_ip or RateLimiter(10, timedelta(minutes=10), clock)
    asks_ads = has_ad_editions(settings)

    def edition_choices(lang: str) -> list[dict[str, Any]]:
        return [{"name": e.name, "label": e.label_in(lang), "description": e.description_in(lang), "ads": e.has_ads}
                for e in settings.digests]

    def language_of(request: Request, subscriber: Subscriber | None = None) -> str:
        return pick_language(request.query_params.get("lang"), subscriber.language if subscriber else None,
                             settings.site.language)

    def page(request: Request, name: str, lang: str, status: int = 200, headers: dict[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        """A page; forms on it get a CSRF token bound to the cookie (set here when the client has none)."""
        cookie = request.cookies.get(CSRF_COOKIE) or tokens.new_csrf_secret()
        html = templates.get_template(f"pages/{name}").render(
            site=settings.site, lang=lang, t=TEXT[lang], csrf=tokens.csrf_field(cookie), honeypot=HONEYPOT,
            categories=categories, editions=edition_choices(lang), timezones=TIMEZONES, all_zones=ALL_ZONES,
            asks_ads=asks_ads, path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status, headers=headers)
        response.headers["Cache-Control"] = "no-store"
        if request.cookies.get(CSRF_COOKIE) != cookie:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", path="/",
                                secure=request.url.scheme == "https")  # behind a proxy: X-Forwarded-Proto
        return response

    def notice(request: Request, lang: str, title: str, message: str, status: int = 200, **context: Any) -> HTMLResponse:
        return page(request, "notice.html", lang, status, title=title, message=message, **context)

    def token_problem(request: Request, lang: str, exc: TokenError) -> HTMLResponse:
        t = TEXT[lang]
        return notice(request, lang, t[f"{exc.reason}_title"], t[exc.reason], status=410 if exc.reason == "expired" else 400,
                      new_link=True)

    def gone(request: Request, lang: str) -> HTMLResponse:
        return notice(request, lang, TEXT[lang]["invalid_title"], TEXT[lang]["gone"], status=410, subscribe_link=True)

    def is_csrf_ok(request: Request, form: Any) -> bool:
        return tokens.is_csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf"))

    def too_many(request: Request, lang: str, seconds: int, key: str = "error_rate") -> HTMLResponse:
        minutes = max(1, (seconds + 59) // 60)
        return notice(request, lang, TEXT[lang]["subscribe_title"], TEXT[lang][key].format(minutes=minutes), status=429,
                      headers={"Retry-After": str(seconds)})

    def read_choices(form: Any, lang: str, *, with_name: bool) -> tuple[Choices | None, list[str]]:
        t = TEXT[lang]
        errors = []
        chosen = tuple(slug for slug in form.getlist("categories") if slug in known)
        if not chosen:
            errors.append(t["error_categories"])
        picked = set(form.getlist("editions"))
        editions = tuple(name for name in editions_known if name in picked)
        if not editions:
            errors.append(t["error_editions"])
        zone = (form.get("timezone") or "").strip()[:64] or None
        if zone is not None and not is_zone(zone):
            errors.append(t["error_timezone"])
        name = CONTROL.sub("", form.get("name", "")).strip()[:MAX_NAME] or None if with_name else None
        if errors:
            return None, errors
        order = [c["slug"] for c in categories]
        return Choices(categories=tuple(sorted(chosen, key=order.index)), editions=editions, name=name, language=lang,
                       timezone=zone, ads=bool(form.get("ads")) if asks_ads else None), []

    def consent_of(request: Request, lang: str) -> Consent:
        words = consent_words(settings, lang)
        return Consent(privacy_text=words.privacy_text, ads_text=words.ads_text, method="form",
                       ip_hash=ip_hash(settings.signing_key, _client_ip(request)))

    def tell(what: str, send: Callable[[], None], subscriber: Subscriber) -> None:
        """A notice that follows a change already made: a failure is logged, the change stands."""
        try:
            send()
        except DeliveryError as exc:
            log.warning("the %s mail to subscriber %s failed: %s", what, subscriber.id, exc)

    # --- subscribe --------------------------------------------------------------------------------------

    def subscribe_form(request: Request) -> Response:
        lang = language_of(request)
        return page(request, "subscribe.html", lang, values={"email": request.query_params.get("email", "")[:320],
                                                              "categories": sorted(known),
                                                              "editions": editions_known[:1],
                                                              "timezone": settings.site.timezone.key})

    def subscribe_post(request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang"), None, settings.site.language)
        t = TEXT[lang]
        values = {"email": form.get("email", "")[:320], "name": form.get("name", "")[:MAX_NAME],
                  "categories": form.getlist("categories"), "editions": form.getlist("editions"),
                  "timezone": form.get("timezone", "")[:64], "privacy": bool(form.get("privacy")),
                  "ads": bool(form.get("ads"))}
        wait = limiter.hit(_client_ip(request))
        if wait:
            return too_many(request, lang, wait)
        if not is_csrf_ok(request, form):
            return page(request, "subscribe.html", lang, status=403, errors=[t["error_csrf"]], values=values)
        if form.get(HONEYPOT):  # a bot filled the field people never see: answer as usual, do nothing
            log.info("subscribe: honeypot filled from %s; ignored", ip_hash(settings.signing_key, _client_ip(request)))
            return notice(request, lang, t["check_inbox_title"], t["check_inbox"].format(email=values["email"]))
        errors: list[str] = []
        try:
            address = normalise_email(values["email"])
        except SubscriberError:
            address = None
            errors.append(f"{t['email']}: " + ("올바른 이메일 주소가 아닙니다." if lang == "ko" else "not a valid address."))
        choices, problems = read_choices(form, lang, with_name=True)
        errors += problems
        if not form.get("privacy"):  # 개인정보 보호법 §15: no subscription without the required consent
            errors.append(t["error_privacy"])
        if errors or address is None or choices is None:
            return page(request, "subscribe.html", lang, status=400, errors=errors, values=values)
        try:
            asked = store.request_confirmation(address, clock(), name=choices.name)
        except RateLimited as exc:
            return too_many(request, lang, exc.retry_after, "error_rate_address")
        subscriber = asked.subscriber
        try:
            if asked.action == "confirm":
                notices.confirm(subscriber, asked.nonce, choices, lang, agreed=True)
            else:
                notices.manage(subscriber, lang)
        except DeliveryError as exc:
            log.warning("subscribe: the %s mail to subscriber %s failed: %s", asked.action, subscriber.id, exc)
            store.release_confirmation(subscriber.id, forget=asked.is_new)  # nothing kept of a failed sign-up
            if exc.is_permanent:
                return page(request, "subscribe.html", lang, status=400, errors=[t["error_undeliverable"]],
                            values=values)
            return notice(request, lang, t["subscribe_title"], t["error_send"], status=503)
        return notice(request, lang, t["check_inbox_title"], t["check_inbox"].format(email=subscriber.email))

    # --- confirm ----------------------------------------------------------------------------------------

    def confirmation(request: Request) -> ConfirmLink | Response:
        """What the confirmation link says, or the page that says what is wrong with it."""
        lang = language_of(request)
        try:
            payload = tokens.read("confirm", request.path_params["token"])
            nonce = payload.get("k")
            # Links made before opaque ids carry {"s": id, "e": address, "f": frequency}: read until they expire.
            owner = (LinkOwner(public_id=str(payload["p"])) if "p" in payload
                     else LinkOwner(subscriber_id=int(payload["s"]), email=str(payload["e"])))
            editions = tuple(e for e in (payload.get("d") or [payload.get("f")]) if e in editions_known)
            choices = Choices(categories=tuple(c for c in payload["c"] if c in known) or tuple(sorted(known)),
                              editions=editions or tuple(editions_known[:1]), language=payload.get("l"),
                              timezone=payload.get("z") if isinstance(payload.get("z"), str) else None,
                              ads=bool(payload.get("a")) and asks_ads)
        except TokenError as exc:
            return token_problem(request, lang, exc)
        except (KeyError, TypeError, ValueError):
            return token_problem(request, lang, TokenError("invalid", "confirm"))
        subscriber = store.owner_of(owner)
        if subscriber is None:
            return gone(request, lang)
        return ConfirmLink(subscriber, nonce if isinstance(nonce, str) else None, choices,
                           agreed=payload.get("v", True) is not False)

    def confirm_page(request: Request) -> Response:
        # A GET changes nothing: mail scanners and link previews open every link. The page's button POSTs.
        link = confirmation(request)
        if isinstance(link, Response):
            return link
        lang = pick_language(request.query_params.get("lang"), link.choices.language, settings.site.language)
        return confirm_form(request, lang, link)

    def confirm_form(request: Request, lang: str, link: ConfirmLink, status: int = 200, **context: Any) -> Response:
        return page(request, "confirm.html", lang, status, email=link.subscriber.email, asks_privacy=not link.agreed,
                    chosen=_names(settings, link.choices.categories),
                    chosen_editions=_edition_names(settings, link.choices.editions, lang), **context)

    def confirm(request: Request, form: Any) -> Response:
        link = confirmation(request)
        if isinstance(link, Response):
            return link
        lang = pick_language(request.query_params.get("lang"), link.choices.language, settings.site.language)
        if not link.agreed and not form.get("privacy"):
            return confirm_form(request, lang, link, 400, errors=[TEXT[lang]["error_privacy"]])
        was_confirmed = link.subscriber.status == "confirmed"
        try:
            subscriber = store.confirm(link.subscriber.id, link.subscriber.public_id, link.choices, nonce=link.nonce,
                                       now=clock(), consent=consent_of(request, lang))
        except LinkUsed:
            return notice(request, lang, TEXT[lang]["used_title"], TEXT[lang]["used"], status=410, new_link=True)
        except SubscriberError:
            return gone(request, lang)
        if not was_confirmed and subscriber.status == "confirmed":  # the welcome, with the result of the consent
            tell("welcome", lambda: notices.welcome(subscriber, lang), subscriber)
        return confirmed_page(request, lang, subscriber)

    def confirmed_page(request: Request, lang: str, subscriber: Subscriber, **context: Any) -> Response:
        return page(request, "confirmed.html", lang, subscriber=subscriber,
                    chosen=_names(settings, subscriber.categories),
                    chosen_editions=_edition_names(settings, subscriber.editions, lang),
                    links=subscriber_links(settings, tokens, subscriber), **context)

    # --- preferences ------------------------------------------------------------------------------------

    def subscriber_from(request: Request, purpose: str) -> tuple[Subscriber | None, Response | None]:
        try:
            owner = tokens.subscriber_of(purpose, request.path_params["token"])
        except TokenError as exc:
            return None, token_problem(request, language_of(request), exc)
        subscriber = store.owner_of(owner)
        if subscriber is None:
            return None, gone(request, language_of(request))
        return subscriber, None

    def preferences_page(request: Request, subscriber: Subscriber, lang: str, status: int = 200, **context: Any) -> Response:
        values = {"categories": list(subscriber.categories), "editions": list(subscriber.editions),
                  "timezone": subscriber.timezone or settings.site.timezone.key, "paused": subscriber.paused_at is not None,
                  "ads": subscriber.ad_consent_at is not None}
        return page(request, "preferences.html", lang, status, subscriber=subscriber, values=values,
                    links=subscriber_links(settings, tokens, subscriber), **context)

    def preferences(request: Request) -> Response:
        subscriber, problem = subscriber_from(request, "preferences")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        return preferences_page(request, subscriber, language_of(request, subscriber))

    def save_preferences(request: Request, form: Any) -> Response:
        subscriber, problem = subscriber_from(request, "preferences")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        lang = pick_language(form.get("lang"), subscriber.language, settings.site.language)
        if not is_csrf_ok(request, form):
            return preferences_page(request, subscriber, lang, 403, errors=[TEXT[lang]["error_csrf"]])
        choices, errors = read_choices(form, lang, with_name=False)
        if choices is None:
            return preferences_page(request, subscriber, lang, 400, errors=errors)
        try:
            change = store.update_preferences(subscriber.id, subscriber.public_id, choices,
                                              is_paused=bool(form.get("paused")), now=clock(),
                                              consent=consent_of(request, lang))
        except SubscriberError:
            return gone(request, lang)
        if change.ads is not None:  # 정보통신망법 §50⑦: the reader is told the result
            tell(f"ads {change.ads}", lambda: notices.ads_changed(change.subscriber, change.ads or "", lang),
                 change.subscriber)
        return preferences_page(request, change.subscriber, lang, saved=True)

    # --- unsubscribe ------------------------------------------------------------------------------------

    def unsubscribe_page(request: Request) -> Response:
        subscriber, problem = subscriber_from(request, "unsubscribe")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        return page(request, "unsubscribe.html", language_of(request, subscriber), subscriber=subscriber,
                    is_done=subscriber.status != "confirmed")

    def unsubscribe(request: Request) -> Response:
        # RFC 8058: the body is "List-Unsubscribe=One-Click" from a mail client, or the page's button; either way
        # the request itself is the decision.
        subscriber, problem = subscriber_from(request, "unsubscribe")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        lang = language_of(request, subscriber)
        if subscriber.status in ("confirmed", "pending"):
            try:
                change = store.unsubscribe(subscriber.id, subscriber.public_id, now=clock())
            except SubscriberError:
                return gone(request, lang)
            subscriber = change.subscriber
            log.info("subscriber %s unsubscribed", subscriber.id)
            if change.ads is not None:  # the advertising consent went with it: the result is told (§50⑦)
                after = BackgroundTask(tell, "ads withdrawn",
                                       lambda: notices.ads_changed(change.subscriber, "withdrawn", lang), subscriber)
                response = page(request, "unsubscribe.html", lang, subscriber=subscriber, is_done=True)
                response.background = after
                return response
        return page(request, "unsubscribe.html", lang, subscriber=subscriber, is_done=True)

    def resubscribe_post(request: Request, form: Any) -> Response:
        subscriber, problem = subscriber_from(request, "unsubscribe")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        lang = pick_language(form.get("lang"), subscriber.language, settings.site.language)
        if not is_csrf_ok(request, form):
            return page(request, "unsubscribe.html", lang, 403, subscriber=subscriber, is_done=True,
                        errors=[TEXT[lang]["error_csrf"]])
        try:
            subscriber = store.resubscribe(subscriber.id, subscriber.public_id, now=clock(),
                                           consent=consent_of(request, lang))
        except SubscriberError:
            return gone(request, lang)
        return confirmed_page(request, lang, subscriber, is_again=True)

    # --- the two-yearly advertising question (정보통신망법 §50⑧) ----------------------------------------

    def keep_page(request: Request) -> Response:
        subscriber, problem = subscriber_from(request, "consent")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        return page(request, "keep.html", language_of(request, subscriber), subscriber=subscriber, is_done=False,
                    links=subscriber_links(settings, tokens, subscriber))

    def keep(request: Request, form: Any) -> Response:
        subscriber, problem = subscriber_from(request, "consent")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        lang = pick_language(form.get("lang"), subscriber.language, settings.site.language)
        if not is_csrf_ok(request, form):
            return page(request, "keep.html", lang, 403, subscriber=subscriber, is_done=False,
                        errors=[TEXT[lang]["error_csrf"]], links=subscriber_links(settings, tokens, subscriber))
        try:
            subscriber = store.keep_ads(subscriber.id, subscriber.public_id, now=clock(),
                                        text=TEXT[lang]["keep_question"].format(site=settings.site.name),
                                        ip_hash=ip_hash(settings.signing_key, _client_ip(request)))
        except SubscriberError:
            return gone(request, lang)
        return page(request, "keep.html", lang, subscriber=subscriber, is_done=True,
                    links=subscriber_links(settings, tokens, subscriber))

    # --- a new link -------------------------------------------------------------------------------------

    def link_form(request: Request) -> Response:
        return page(request, "link.html", language_of(request), values={"email": ""})

    def link_post(request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang"), None, settings.site.language)
        t = TEXT[lang]
        email = form.get("email", "")[:320]
        wait = limiter.hit(_client_ip(request))
        if wait:
            return too_many(request, lang, wait)
        if not is_csrf_ok(request, form):
            return page(request, "link.html", lang, 403, errors=[t["error_csrf"]], values={"email": email})
        # The answer goes out before the address is even looked up, the same for everyone and in the same time:
        # neither its words nor its timing may tell who is subscribed.
        answer = notice(request, lang, t["link_title"], t["link_sent"].format(email=email))
        if "@" in email and not form.get(HONEYPOT):
            answer.background = BackgroundTask(send_link, lang, email)
        return answer

    def send_link(lang: str, email: str) -> None:
        subscriber = store.find(email)
        if subscriber is None or subscriber.status != "confirmed":
            return  # nobody to mail, or an address that asked for no mail: it subscribes again at /subscribe
        try:
            store.request_confirmation(subscriber.email, clock())
            notices.manage(subscriber, lang)
        except (RateLimited, SubscriberError):
            pass
        except DeliveryError as exc:
            log.warning("link: the mail to subscriber %s failed: %s", subscriber.id, exc)
            store.release_confirmation(subscriber.id)

    return [
        Route("/subscribe", subscribe_form, methods=["GET", "HEAD"]),
        Route("/subscribe", with_form(subscribe_post), methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", with_form(confirm), methods=["POST"]),
        Route("/preferences/{token}", preferences, methods=["GET"]),
        Route("/preferences/{token}", with_form(save_preferences), methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
        Route("/resubscribe/{token}", with_form(resubscribe_post), methods=["POST"]),
        Route("/consent/{token}", keep_page, methods=["GET", "HEAD"]),
        Route("/consent/{token}", with_form(keep), methods=["POST"]),
        Route("/link", link_form, methods=["GET"]),
        Route("/link", with_form(link_post), methods=["POST"]),
    ]


def with_form(handler: Callable[[Request, Any], Response]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that reads the form on the event loop, then does its database and SMTP work off it."""
    async def endpoint(request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(handler, request, form)
    return endpoint


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _names(settings: Settings, slugs: tuple[str, ...]) -> list[str]:
    names = {c.slug: c.name for c in settings.categories}
    return [names.get(slug, slug) for slug in slugs]


def _edition_names(settings: Settings, names: tuple[str, ...], lang: str) -> list[str]:
    labels = {e.name: e.label_in(lang) for e in settings.digests}
    return [labels.get(name, name) for name in names]

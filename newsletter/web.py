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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.settings import Settings

from .compose import build_message, message_id, render_notice, sender_domain, wire_address
from .errors import DeliveryError, LinkUsed, RateLimited, SubscriberError, TokenError
from .limits import RateLimiter
from .messages import TEXT, TIMEZONES, pick_language
from .signing import DkimSigner
from .subscribers import FREQUENCIES, Choices, Subscriber, SubscriberStore, normalise_email
from .tokens import Tokens
from .transport import Transport
from .verp import TagCodec

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
    """What a confirmation link carries: whom, the nonce it must match, the choices made on the form."""

    subscriber_id: int
    email: str
    nonce: str | None
    choices: Choices
    ip_hash: str | None


def subscriber_links(settings: Settings, tokens: Tokens, subscriber: Subscriber) -> PageLinks:
    base = settings.site.base_url
    return PageLinks(
        preferences=f"{base}/preferences/{tokens.for_subscriber('preferences', subscriber.id, subscriber.email)}",
        unsubscribe=f"{base}/unsubscribe/{tokens.for_subscriber('unsubscribe', subscriber.id, subscriber.email)}")


def ip_hash(signing_key: str, ip: str) -> str:
    """A keyed hash of the client IP: enough to show consent came from one place, useless to find the person."""
    return hashlib.blake2b(ip.encode(), key=signing_key.encode()[:64], digest_size=16).hexdigest()


def routes(settings: Settings, store: SubscriberStore, tokens: Tokens, templates: Environment,
           clock: Callable[[], datetime], transport: Callable[[], Transport], tags: TagCodec,
           signer: DkimSigner | None = None, per_ip: RateLimiter | None = None) -> list[Route]:
    categories = [{"slug": c.slug, "name": c.name} for c in settings.categories]
    known = {c.slug for c in settings.categories}
    limiter = per_ip or RateLimiter(10, timedelta(minutes=10), clock)

    def language_of(request: Request, subscriber: Subscriber | None = None) -> str:
        return pick_language(request.query_params.get("lang"), subscriber.language if subscriber else None,
                             settings.site.language)

    def page(request: Request, name: str, lang: str, status: int = 200, headers: dict[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        """A page; forms on it get a CSRF token bound to the cookie (set here when the client has none)."""
        cookie = request.cookies.get(CSRF_COOKIE) or tokens.new_csrf_secret()
        html = templates.get_template(f"pages/{name}").render(
            site=settings.site, lang=lang, t=TEXT[lang], csrf=tokens.csrf_field(cookie), honeypot=HONEYPOT,
            categories=categories, frequencies=FREQUENCIES, timezones=TIMEZONES, path=request.url.path, **context)
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
        frequency = form.get("frequency", "daily")
        if frequency not in FREQUENCIES:
            errors.append(t["error_frequency"])
        zone = form.get("timezone") or None
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                errors.append(t["error_timezone"])
        name = CONTROL.sub("", form.get("name", "")).strip()[:MAX_NAME] or None if with_name else None
        if errors:
            return None, errors
        order = [c["slug"] for c in categories]
        return Choices(categories=tuple(sorted(chosen, key=order.index)), frequency=frequency, name=name, language=lang,
                       timezone=zone), []

    def send_notice(lang: str, subscriber: Subscriber, to_name: str | None, kind: str, button_url: str) -> None:
        t = TEXT[lang]
        site = settings.site.name
        button = {"confirm": t["confirm_button"], "manage": t["preferences_link"]}[kind]
        mail = render_notice(templates, settings, language=lang, subject=t[f"{kind}_subject"].format(site=site),
                             title=t[f"{kind}_subject"].format(site=site).split("] ", 1)[-1],
                             body=t[f"{kind}_body"].format(site=site), button=button, button_url=button_url,
                             footnote=t["confirm_ignore"] if kind == "confirm" else "", why=t["why"].format(site=site))
        tag = tags.notice(subscriber.id)
        data = build_message(settings, mail, to=subscriber.email, to_name=to_name, now=clock(), list_id="notices",
                             message_id=message_id(sender_domain(settings), tag))
        send_one(transport, signer, tags.envelope_from(tag), subscriber.email, data)

    # --- subscribe --------------------------------------------------------------------------------------

    def subscribe_form(request: Request) -> Response:
        lang = language_of(request)
        return page(request, "subscribe.html", lang, values={"email": request.query_params.get("email", "")[:320],
                                                              "categories": sorted(known), "frequency": "daily"})

    def subscribe_post(request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang"), None, settings.site.language)
        t = TEXT[lang]
        values = {"email": form.get("email", "")[:320], "name": form.get("name", "")[:MAX_NAME],
                  "categories": form.getlist("categories"), "frequency": form.get("frequency", "daily")}
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
        if errors or address is None or choices is None:
            return page(request, "subscribe.html", lang, status=400, errors=errors, values=values)
        try:
            asked = store.request_confirmation(address, clock())
        except RateLimited as exc:
            return too_many(request, lang, exc.retry_after, "error_rate_address")
        subscriber = asked.subscriber
        if asked.action == "confirm":
            token = tokens.make("confirm", {
                "s": subscriber.id, "e": subscriber.email, "k": asked.nonce, "c": list(choices.categories),
                "f": choices.frequency, "n": choices.name, "l": lang, "z": choices.timezone,
                "ip": ip_hash(settings.signing_key, _client_ip(request))})
            url = f"{settings.site.base_url}/confirm/{token}"
        else:
            url = subscriber_links(settings, tokens, subscriber).preferences
        try:
            send_notice(lang, subscriber, choices.name, asked.action, url)
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
            link = ConfirmLink(
                subscriber_id=int(payload["s"]), email=str(payload["e"]),
                nonce=nonce if isinstance(nonce, str) else None,  # links made before nonces carry none
                choices=Choices(categories=tuple(c for c in payload["c"] if c in known) or tuple(sorted(known)),
                                frequency=payload["f"], name=payload.get("n"), language=payload.get("l"),
                                timezone=payload.get("z")),
                ip_hash=payload.get("ip"))
        except TokenError as exc:
            return token_problem(request, lang, exc)
        except (KeyError, TypeError, ValueError):
            return token_problem(request, lang, TokenError("invalid", "confirm"))
        return link

    def confirm_page(request: Request) -> Response:
        # A GET changes nothing: mail scanners and link previews open every link. The page's button POSTs.
        link = confirmation(request)
        if isinstance(link, Response):
            return link
        lang = pick_language(request.query_params.get("lang"), link.choices.language, settings.site.language)
        return page(request, "confirm.html", lang, email=link.email, chosen=_names(settings, link.choices.categories))

    def confirm(request: Request, form: Any) -> Response:
        link = confirmation(request)
        if isinstance(link, Response):
            return link
        lang = pick_language(request.query_params.get("lang"), link.choices.language, settings.site.language)
        try:
            subscriber = store.confirm(link.subscriber_id, link.email, link.choices, nonce=link.nonce, now=clock(),
                                       ip_hash=link.ip_hash, consent_text=_consent_text(settings, lang, link.choices))
        except LinkUsed:
            return notice(request, lang, TEXT[lang]["used_title"], TEXT[lang]["used"], status=410, new_link=True)
        except SubscriberError:
            return gone(request, lang)
        return page(request, "confirmed.html", lang, subscriber=subscriber, chosen=_names(settings, subscriber.categories),
                    links=subscriber_links(settings, tokens, subscriber))

    # --- preferences ------------------------------------------------------------------------------------

    def subscriber_from(request: Request, purpose: str) -> tuple[Subscriber | None, Response | None]:
        try:
            subscriber_id, email = tokens.subscriber_of(purpose, request.path_params["token"])
        except TokenError as exc:
            return None, token_problem(request, language_of(request), exc)
        subscriber = store.get(subscriber_id, email)
        if subscriber is None:
            return None, gone(request, language_of(request))
        return subscriber, None

    def preferences_page(request: Request, subscriber: Subscriber, lang: str, status: int = 200, **context: Any) -> Response:
        values = {"categories": list(subscriber.categories), "frequency": subscriber.frequency,
                  "timezone": subscriber.timezone or settings.site.timezone.key, "paused": subscriber.paused_at is not None}
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
        updated = store.update_preferences(subscriber.id, subscriber.email, choices, is_paused=bool(form.get("paused")),
                                           now=clock())
        return preferences_page(request, updated, lang, saved=True)

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
        if subscriber.status in ("confirmed", "pending"):
            subscriber = store.unsubscribe(subscriber.id, subscriber.email, now=clock())
            log.info("subscriber %s unsubscribed", subscriber.id)
        return page(request, "unsubscribe.html", language_of(request, subscriber), subscriber=subscriber, is_done=True)

    def resubscribe_post(request: Request, form: Any) -> Response:
        subscriber, problem = subscriber_from(request, "unsubscribe")
        if subscriber is None:
            return problem  # type: ignore[return-value]
        lang = pick_language(form.get("lang"), subscriber.language, settings.site.language)
        if not is_csrf_ok(request, form):
            return page(request, "unsubscribe.html", lang, 403, subscriber=subscriber, is_done=True,
                        errors=[TEXT[lang]["error_csrf"]])
        choices = Choices(categories=subscriber.categories, frequency=subscriber.frequency, language=lang)
        subscriber = store.resubscribe(subscriber.id, subscriber.email, now=clock(),
                                       ip_hash=ip_hash(settings.signing_key, _client_ip(request)),
                                       consent_text=_consent_text(settings, lang, choices))
        return page(request, "confirmed.html", lang, subscriber=subscriber, chosen=_names(settings, subscriber.categories),
                    links=subscriber_links(settings, tokens, subscriber), is_again=True)

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
            send_notice(lang, subscriber, subscriber.name, "manage",
                        subscriber_links(settings, tokens, subscriber).preferences)
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
        Route("/link", link_form, methods=["GET"]),
        Route("/link", with_form(link_post), methods=["POST"]),
    ]


def send_one(transport: Callable[[], Transport], signer: DkimSigner | None, sender: str, recipient: str,
             data: bytes) -> None:
    """One mail on its own connection, signed when DKIM is set up. Raises DeliveryError."""
    if signer is not None:
        data = signer.sign(data)
    connection = transport()
    try:
        connection.send(sender, wire_address(recipient), data)
    finally:
        connection.close()


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


def _consent_text(settings: Settings, lang: str, choices: Choices) -> str:
    """The words agreed to, with what was chosen, as the consent record keeps them."""
    t = TEXT[lang]
    return (t["consent"].format(site=settings.site.name) + f" [{t['categories']}: "
            + ", ".join(_names(settings, choices.categories)) + f"; {t['frequency']}: {t[choices.frequency]}]")

"""[push]: the public routes a newsroom's pages use to offer breaking alerts by Web Push (docs/push.md).

    GET  /push/key                          the VAPID public key (base64url), for a snippet of one's own
    GET  /push/subscribe.js                 the button snippet (asks permission on click, subscribes, posts)
    GET  /push/sw.js                        the service worker (shows a push, opens its link, "unsubscribe")
    POST /push/subscriptions                the browser's PushSubscription + sections, language, zone, ads consent
    POST /push/subscriptions/unsubscribe    {"endpoint": ...}: that subscription is removed
    OPTIONS on both POST routes             CORS preflight, for the allowed origins only

Who may POST: pages of the site's own origin ([site] base_url) and of `[push] origins`, and nothing else. Browsers
send `Origin` with every POST, and a JSON body (the only type taken) cannot come from a plain HTML form without a
preflight, so another site's page can neither subscribe nor unsubscribe anyone; a request without an allowed
`Origin` is 403. Bodies are capped at 4 KiB (413), each client IP at SUBSCRIBE_PER_IP (429), and a bad
subscription is 422 with the field that is wrong. Answers are JSON: these routes are called by scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feeds.core.limits import Limiter

from ..messages import TEXT
from ..push_subscriptions import (
    MAX_BODY,
    MAX_ENDPOINT,
    PushRefused,
    PushStore,
    parse_subscription,
)
from ..settings import Settings
from .forms import client_ip

HERE = Path(__file__).parent
WORDS = ("button", "off", "done", "off_done", "denied", "unsupported", "failed", "sections", "ads", "unsubscribe",
         "title")


class BodyTooLarge(Exception):
    pass


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def script_json(value: Any) -> str:
    """A value as a JavaScript literal that no string in it can end (`</script>`, U+2028)."""
    return (json.dumps(value, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


class PushRoutes:
    """The endpoints over the subscriptions' store; `routes()` lists them for the app."""

    def __init__(self, settings: Settings, store: PushStore, per_ip: Limiter, clock: Callable[[], datetime]) -> None:
        assert settings.push is not None
        self.settings = settings
        self.push = settings.push
        self.store = store
        self.per_ip = per_ip
        self.clock = clock
        self.origins = frozenset({origin_of(settings.site.base_url), *self.push.origins})
        words = {lang: {w: TEXT[lang][f"push_{w}"] for w in WORDS} for lang in ("ko", "en")}
        base = settings.site.base_url.rstrip("/")
        self.subscribe_js = (HERE / "push_subscribe.js").read_text("utf-8").replace("__GAZETTE__", script_json(
            {"base": base, "key": self.push.vapid_public_key, "words": words,
             "categories": [[c.slug, c.name] for c in settings.categories]}))
        self.sw_js = (HERE / "push_sw.js").read_text("utf-8").replace("__GAZETTE__", script_json(
            {"base": base, "words": words}))

    def routes(self) -> list[Route]:
        return [Route("/push/key", self.key, methods=["GET", "HEAD"]),
                Route("/push/subscribe.js", self.script(self.subscribe_js), methods=["GET", "HEAD"]),
                Route("/push/sw.js", self.script(self.sw_js), methods=["GET", "HEAD"]),
                Route("/push/subscriptions", self.subscribe, methods=["POST"]),
                Route("/push/subscriptions", self.preflight, methods=["OPTIONS"]),
                Route("/push/subscriptions/unsubscribe", self.unsubscribe, methods=["POST"]),
                Route("/push/subscriptions/unsubscribe", self.preflight, methods=["OPTIONS"])]

    def key(self, request: Request) -> Response:
        return JSONResponse({"publicKey": self.push.vapid_public_key},
                            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})

    def script(self, text: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return Response(text, media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})  # nosniff: the app sets it on all
        return endpoint

    # --- CORS and the checks every POST passes

    def cors(self, origin: str) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin", "")
        if origin.lower() not in self.origins:
            return self.error(403, "this origin may not subscribe; list it in [push] origins", origin=None)
        return Response(status_code=204, headers={
            **self.cors(origin), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})

    def error(self, status: int, message: str, *, origin: str | None, headers: dict[str, str] | None = None
              ) -> JSONResponse:
        extra = {**(self.cors(origin) if origin else {}), **(headers or {})}
        return JSONResponse({"error": message}, status_code=status, headers=extra)

    async def read(self, request: Request) -> tuple[str | None, Any, Response | None]:
        """The allowed origin and the parsed body, or the answer refusing the request."""
        origin = request.headers.get("origin", "")
        if origin.lower() not in self.origins:
            return None, None, self.error(403, "this origin may not subscribe; list it in [push] origins", origin=None)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return origin, None, self.error(415, "the body must be application/json", origin=origin)
        wait = self.per_ip.hit(client_ip(request))
        if wait:
            return origin, None, self.error(429, "too many requests from this address; try again later",
                                            origin=origin, headers={"Retry-After": str(wait)})
        try:
            body = await self.body(request)
        except BodyTooLarge:
            return origin, None, self.error(413, f"the body is larger than {MAX_BODY} bytes", origin=origin)
        except ClientDisconnect:
            return origin, None, self.error(400, "the request was cut short", origin=origin)
        try:
            return origin, json.loads(body), None
        except (ValueError, UnicodeDecodeError):
            return origin, None, self.error(400, "the body is not JSON", origin=origin)

    async def body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise BodyTooLarge
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > MAX_BODY:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    # --- the two POSTs

    async def subscribe(self, request: Request) -> Response:
        origin, body, refusal = await self.read(request)
        if refusal is not None:
            return refusal
        try:
            wanted = parse_subscription(body, categories=[c.slug for c in self.settings.categories],
                                        languages=("ko", "en"), allow_insecure=self.push.allow_insecure_endpoints,
                                        services=self.push.services)
        except PushRefused as exc:
            return self.error(422, str(exc), origin=origin)
        await run_in_threadpool(self.store.subscribe, wanted, self.clock())
        return JSONResponse({"subscribed": True, "categories": list(wanted.categories)}, status_code=201,
                            headers=self.cors(origin or ""))

    async def unsubscribe(self, request: Request) -> Response:
        origin, body, refusal = await self.read(request)
        if refusal is not None:
            return refusal
        endpoint = body.get("endpoint") if isinstance(body, dict) and set(body) == {"endpoint"} else None
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
            return self.error(422, "the body must be {\"endpoint\": the subscription's endpoint}", origin=origin)
        await run_in_threadpool(self.store.unsubscribe, endpoint)
        # The same answer whether there was one: the endpoint is the browser's secret, not a question to answer.
        return JSONResponse({"subscribed": False}, headers=self.cors(origin or ""))

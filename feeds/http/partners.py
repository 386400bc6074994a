"""Partner feeds over HTTP: `GET /partners/{partner}/feeds/{slug}.rss|.atom|.json|.ninjs`.

The key comes as `Authorization: Bearer KEY` or `?key=KEY`. The partner desk (`feeds.syndication.PartnerDesk`)
decides; this maps its answer, all errors as problem+json through the one error mapping: 401 with
`WWW-Authenticate` for no key or a key that is not this partner's; 403 for a revoked key or a category the partner
did not license; 404 for no such feed; 429 with `Retry-After` past the partner's rate limit. A feed answers
conditional GET and gzip as public feeds do (`feeds.core.http.representation_response`), but only private caches
may keep it.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.http import representation_response
from ..syndication import PartnerAnswer, PartnerDesk

REALM = 'Bearer realm="gazette-partners"'


def presented_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("key") or None


def refusal(answer: PartnerAnswer, partner_slug: str, slug: str, fmt: str) -> HTTPException:
    """The error a refused answer gets; never kept by a cache."""
    headers = {"Cache-Control": "no-store"}
    if answer.outcome == "missing":
        return HTTPException(401, "a partner key is required: Authorization: Bearer KEY (or ?key=KEY)",
                             {**headers, "WWW-Authenticate": REALM})
    if answer.outcome == "wrong" or answer.partner is None:
        return HTTPException(401, f"this key is not a key of partner {partner_slug!r}",
                             {**headers, "WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    partner = answer.partner
    if answer.outcome == "revoked":
        return HTTPException(403, "this key was revoked; use another of the partner's keys or ask for a new one",
                             headers)
    if answer.outcome == "limited":
        return HTTPException(429, f"more than {partner.rate_limit} requests a minute; try again later",
                             {**headers, "Retry-After": str(answer.retry_after)})
    if answer.outcome == "unlicensed":
        return HTTPException(403, f"partner {partner.slug!r} does not license {slug!r}; licensed: "
                                  + ", ".join(partner.categories), headers)
    return HTTPException(404, f"no partner feed {slug}.{fmt}: the feeds are all.<fmt> and <category>.<fmt> for the "
                              f"categories licensed ({', '.join(partner.categories)}); fmt is rss, atom, json or ninjs", headers)


class PartnerFeedRoute:
    def __init__(self, desk: PartnerDesk, max_age: int) -> None:
        self._desk = desk
        self._max_age = max_age

    def routes(self) -> list[Route]:
        return [Route("/partners/{partner}/feeds/{slug}.{fmt}", self.feed, methods=["GET", "HEAD"])]

    def feed(self, request: Request) -> Response:  # plain method: Starlette runs it in its thread pool
        partner_slug, slug, fmt = (request.path_params[k] for k in ("partner", "slug", "fmt"))
        answer = self._desk.open(partner_slug, presented_key(request), slug, fmt)
        if answer.outcome != "ok" or answer.rendered is None:
            raise refusal(answer, partner_slug, slug, fmt)
        # The bytes depend on the key: shared caches must not keep them or hand them to anyone else.
        response = representation_response(request, answer.rendered, f"private, max-age={self._max_age}",
                                           {"Vary": "Accept-Encoding, Authorization"})
        is_sent = response.status_code == 200 and request.method == "GET"
        self._desk.delivered(answer, status=response.status_code, sent_bytes=len(response.body) if is_sent else None)
        return response

"""The public routes under random input (hypothesis): forms, tokens, beacons, redirects, partner feeds, shares.

Whatever arrives: never a server error, always an answer in the format of its route, and nothing stored for what
is refused (no subscriber row, no mail, no view, no click).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.security.conftest import PARTNER_KEY, Gazette

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
text = st.text(max_size=80)  # any code point: controls, surrogates left out by hypothesis's defaults, RTL, NUL
segment = st.one_of(text, st.sampled_from(["", ".", "..", "%00", "%2e%2e", "a" * 300, "1" * 25, "-1", "²"]))


def path(*parts: str) -> str:
    """URL path segments holding `parts` as they are (a client would resolve a bare "." or ".." away)."""
    return "/".join("%2e" * len(p) if p in (".", "..") else quote(p, safe="") for p in parts)


def footprint(site: Gazette) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    services = site.services
    services.view_counter.flush()
    with services.engine.connect() as conn:
        from sqlalchemy import text as sql

        counts = tuple(conn.execute(sql(f"SELECT count(*) FROM {table}")).scalar_one()
                       for table in ("subscribers", "suppressions", "deliveries", "article_views", "article_clicks",
                                     "campaign_clicks", "partner_usage"))
    return counts, len(site.smtp.messages)


def header_value(value: str) -> bytes:
    """Any text as the bytes a client could send in a header (no line breaks: no client can send those)."""
    return value.encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")


def assert_answer(response: Any, *, json: bool) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    kind = response.headers.get("content-type", "")
    if json and response.status_code >= 400:
        assert kind.startswith(("application/json", "application/problem+json")), kind
    if not json and response.status_code >= 400:
        assert kind.startswith("text/html"), kind


@FUZZ
@given(email=text, name=text, categories=st.lists(text, max_size=3), frequency=text, timezone=text, csrf=text,
       website=text, with_csrf=st.booleans())
def test_subscribe_form(gazette: Gazette, email: str, name: str, categories: list[str], frequency: str,
                        timezone: str, csrf: str, website: str, with_csrf: bool) -> None:
    fields = gazette.form("/subscribe") if with_csrf else {"csrf": csrf}
    before = footprint(gazette)
    answer = gazette.client.post("/subscribe", data={**fields, "email": email, "name": name, "categories": categories,
                                                     "frequency": frequency, "timezone": timezone, "website": website})
    assert_answer(answer, json=False)
    if answer.status_code >= 400:
        assert footprint(gazette) == before


@FUZZ
@given(kind=st.sampled_from(["confirm", "preferences", "unsubscribe", "resubscribe"]), token=segment,
       method=st.sampled_from(["GET", "POST"]), body=st.dictionaries(text, text, max_size=3))
def test_links_with_made_up_tokens(gazette: Gazette, kind: str, token: str, method: str, body: dict[str, str]) -> None:
    before = footprint(gazette)
    answer = gazette.client.request(method, "/" + path(kind, token), data=body if method == "POST" else None)
    assert_answer(answer, json=False)
    assert answer.status_code != 200 or kind != "resubscribe"
    assert footprint(gazette) == before


@FUZZ
@given(edition=segment, token=segment, redirect=segment)
def test_archive_and_redirect_tokens(gazette: Gazette, edition: str, token: str, redirect: str) -> None:
    before = footprint(gazette)
    assert_answer(gazette.client.get("/" + path("archive", edition, token)), json=False)
    assert_answer(gazette.client.get("/" + path("r", redirect)), json=False)
    assert footprint(gazette) == before


@FUZZ
@given(article=segment, agent=text, method=st.sampled_from(["GET", "POST"]))
def test_view_beacons_for_unknown_articles(gazette: Gazette, article: str, agent: str, method: str) -> None:
    if article in gazette.article_ids():
        return
    before = footprint(gazette)
    target = "/v/" + path(article) + (".gif" if method == "GET" else "")
    answer = gazette.client.request(method, target, headers={"User-Agent": header_value(agent)})
    assert answer.status_code < 500
    assert footprint(gazette) == before


@FUZZ
@given(partner=segment, feed=segment, fmt=st.sampled_from(["rss", "atom", "json", "xml", ""]), key=text,
       as_query=st.booleans())
def test_partner_feeds(gazette: Gazette, partner: str, feed: str, fmt: str, key: str, as_query: bool) -> None:
    target = f"/partners/{path(partner)}/feeds/{path(feed)}.{fmt}"
    headers = {} if as_query else {"Authorization": b"Bearer " + header_value(key)}
    answer = gazette.client.get(target, params={"key": key} if as_query else None, headers=headers)
    assert_answer(answer, json=True)
    assert answer.status_code in (200, 304, 400, 401, 403, 404, 429)
    if key != PARTNER_KEY:
        assert answer.status_code != 200


@FUZZ
@given(article=segment, fields=st.fixed_dictionaries({"sender_name": text, "recipient": text, "note": text}),
       as_json=st.booleans())
def test_share(gazette: Gazette, article: str, fields: dict[str, str], as_json: bool) -> None:
    before = footprint(gazette)
    answer = gazette.client.post(f"/articles/{path(article)}/share", data=fields,
                                 headers={"Accept": "application/json"} if as_json else {})
    assert answer.status_code < 500, answer.text[:300]
    if answer.status_code >= 400:
        assert footprint(gazette) == before


@FUZZ
@given(email=text, with_csrf=st.booleans())
def test_new_link_form(gazette: Gazette, email: str, with_csrf: bool) -> None:
    fields = gazette.form("/link") if with_csrf else {}
    before = footprint(gazette)
    answer = gazette.client.post("/link", data={**fields, "email": email})
    assert_answer(answer, json=False)
    assert footprint(gazette) == before  # nobody here is subscribed: nothing to send, nothing to store

"""Partner syndication: keys, licensing, embargo, item content, conditional GET, rate limit, usage, the admin API,
the CLI, and signed pushes to a receiver on loopback that fails at first."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from feeds.core.errors import ConfigError
from feeds.core.limits import RateLimiter
from feeds.partners import PartnerStore, feed_scope, syndicate_html, utm_for
from feeds.push import PushPolicy, PushQueue, PushWorker, backoff
from feeds.readership import Redirects
from feeds.settings import build_partner
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    ROOT,
    Clock,
    InProcessClient,
    free_port,
    gazette_command,
    wait_healthy,
    write_config,
)
from tests.test_store import make_article

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
PORTAL_KEY = "portal-key-0123456789abcdef"
LATE_KEY = "late-key-0123456789abcdef"
TINY_KEY = "tiny-key-0123456789abcdef"
SECRET = "push-secret-0123456789"
ATOM = "{http://www.w3.org/2005/Atom}"
CONFIG = f"""
[admin]
token = "admin-token-0123456789"

[[categories]]
slug = "culture"
name = "문화"

[[partners]]
slug = "portal"
name = "한빛포털"
key = "{PORTAL_KEY}"
categories = ["politics", "economy"]
rate_limit = 0

[[partners]]
slug = "late"
name = "늦은신문"
key = "{LATE_KEY}"
categories = ["all"]
embargo_minutes = 30
full_content = false
include_images = false
utm = {{}}
attribution = "출처: 한빛일보"

[[partners]]
slug = "tiny"
name = "작은사이트"
key = "{TINY_KEY}"
categories = ["politics"]
rate_limit = 2
"""
BODY = ('<p>본문 <a href="https://news.example.com/2">관련 기사</a> <a href="https://other.example.org/x">외부</a></p>'
        '<figure><img src="https://news.example.com/i.jpg"><figcaption>사진</figcaption></figure><p>끝</p>')


def articles():  # type: ignore[no-untyped-def]
    rich = replace(make_article(1, published_at=NOW - timedelta(hours=2)), content_html=BODY,
                   image_url="https://news.example.com/i.jpg")
    return {"rich": rich, "economy": make_article(2, category="economy", published_at=NOW - timedelta(hours=1)),
            "culture": make_article(3, category="culture", published_at=NOW - timedelta(hours=1)),
            "fresh": make_article(4, published_at=NOW - timedelta(minutes=10))}


# --- pure steps -------------------------------------------------------------------------------------------------

def partner(**changes):  # type: ignore[no-untyped-def]
    from feeds.partners import Partner

    values = dict(slug="p", name="P", categories=("politics",), full_content=True, include_images=True,
                  embargo_minutes=0, utm=(), attribution=None, callback_url=None, push_secret=None, rate_limit=0,
                  origin="config", created_at=NOW, push_since_at=None)
    return Partner(**{**values, **changes})


@pytest.mark.parametrize("categories, slug, expected", [
    pytest.param(("politics",), "politics", ("ok", ("politics",)), id="licensed"),
    pytest.param(("politics",), "culture", ("unlicensed", None), id="unlicensed"),
    pytest.param(("politics",), "sports", ("unknown", None), id="unknown"),
    pytest.param(("politics", "economy"), "all", ("ok", ("politics", "economy")), id="all-is-what-it-licensed"),
    pytest.param(("all",), "all", ("ok", None), id="all-licensed-everything"),
    pytest.param(("all",), "culture", ("ok", ("culture",)), id="all-licenses-each"),
])
def test_feed_scope(categories, slug, expected) -> None:  # type: ignore[no-untyped-def]
    scope = feed_scope(partner(categories=categories), slug, ["politics", "economy", "culture"])
    assert (scope.status, scope.categories) == expected


@pytest.mark.parametrize("include_images, expected", [
    pytest.param(True, '<p>본문 <a href="https://news.example.com/2?utm_source=p">관련 기사</a> '
                       '<a href="https://other.example.org/x">외부</a></p><figure><img src="https://news.example.com/i.jpg">'
                       '<figcaption>사진</figcaption></figure><p>끝</p>', id="images-kept"),
    pytest.param(False, '<p>본문 <a href="https://news.example.com/2?utm_source=p">관련 기사</a> '
                        '<a href="https://other.example.org/x">외부</a></p><p>끝</p>', id="images-dropped"),
])
def test_syndicate_html(include_images: bool, expected: str) -> None:
    assert syndicate_html(BODY, utm={"utm_source": "p"}, own_hosts={"news.example.com"},
                          include_images=include_images) == expected


@pytest.mark.parametrize("utm, expected", [
    pytest.param(None, (("utm_medium", "syndication"), ("utm_source", "p")), id="default"),
    pytest.param({}, (), id="none"),
    pytest.param({"utm_campaign": "x"}, (("utm_campaign", "x"),), id="own"),
])
def test_utm_for(utm, expected) -> None:  # type: ignore[no-untyped-def]
    assert utm_for("p", utm) == expected


@pytest.mark.parametrize("item, key", [
    pytest.param({"callback_url": "https://x.example/push"}, "p.callback_secret", id="callback-without-secret"),
    pytest.param({"callback_url": "ftp://x", "callback_secret": SECRET}, "p.callback_url", id="callback-not-http"),
    pytest.param({"utm": {"source": "x"}}, "p.utm.source", id="utm-name"),
    pytest.param({"embargo_minutes": -1}, "p.embargo_minutes", id="negative-embargo"),
    pytest.param({"rate_limit": -5}, "p.rate_limit", id="negative-rate"),
    pytest.param({"categories": ["sports"]}, "p.categories[0]", id="unknown-category"),
    pytest.param({"secret": "x"}, "p.secret", id="unknown-key"),
])
def test_partner_settings_are_checked(item, key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as error:
        build_partner("p", {"slug": "p", "name": "P", "categories": ["politics"], **item}, {"politics"})
    assert error.value.key == key


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = PushPolicy(first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=5))
    assert [backoff(policy, n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def test_rate_limiter_refills_with_the_clock() -> None:
    clock = Clock()
    limiter = RateLimiter(60, timedelta(minutes=1), clock, refill="steady")  # as the partner feeds use it
    assert [limiter.hit("p", 2) for _ in range(3)] == [0, 0, 30]
    clock.now += timedelta(seconds=30)
    assert limiter.hit("p", 2) == 0
    assert all(limiter.hit("q", 0) == 0 for _ in range(100))  # 0 = no limit


def test_partner_redirect_tokens_carry_partner_and_utm() -> None:
    redirects = Redirects("test-signing-key-0123456789", "https://news.example.com")
    token = redirects.url("abc", "partner", partner="portal", query={"utm_source": "portal"}).rsplit("/", 1)[1]
    target = redirects.target(token)
    assert target is not None and (target.partner, dict(target.query)) == ("portal", {"utm_source": "portal"})
    assert target.destination("https://news.example.com/1?id=3&utm_source=old") == \
        "https://news.example.com/1?id=3&utm_source=portal"
    assert redirects.read(token) == ("abc", "partner")
    assert redirects.target(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None


def test_config_keys_are_hashed_rotated_and_stay_revoked(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    chosen = build_partner("p", {"slug": "portal", "name": "포털", "categories": ["politics"],
                                 "key": "first-config-key-0123"}, {"politics"})
    store.sync_config(settings.categories, [], [chosen], clock())
    partners = PartnerStore(store.engine, settings.site.timezone, ["portal"])
    assert partners.authenticate("portal", "first-config-key-0123").status == "ok"
    store.sync_config(settings.categories, [], [replace(chosen, key="second-config-key-0123")], clock())
    assert partners.authenticate("portal", "first-config-key-0123").status == "revoked"
    assert partners.authenticate("portal", "second-config-key-0123").status == "ok"
    store.sync_config(settings.categories, [], [chosen], clock())  # the old key back in the file: still revoked
    assert partners.authenticate("portal", "first-config-key-0123").status == "revoked"
    gone = PartnerStore(store.engine, settings.site.timezone, [])  # the partner left the file
    assert gone.authenticate("portal", "second-config-key-0123").status == "wrong"


# --- over HTTP ----------------------------------------------------------------------------------------------------

@pytest.fixture
def app(tmp_path, database_url, clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=CONFIG), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles(list(articles().values()), source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        yield client, services
    services.engine.dispose()


def get(client, path: str, key: str | None = PORTAL_KEY, **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(path, headers={**auth, **headers})


def titles(response: httpx.Response) -> list[str]:
    return [item["title"] for item in response.json()["items"]]


def test_keys_good_wrong_rotated_revoked(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    missing = get(client, "/partners/portal/feeds/politics.json", key=None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="gazette-partners"'
    assert "partner key is required" in missing.json()["error"]
    wrong = get(client, "/partners/portal/feeds/politics.json", key="not-the-key-0123456789")
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert get(client, "/partners/portal/feeds/politics.json", key=LATE_KEY).status_code == 401  # another's key
    assert get(client, "/partners/nobody/feeds/politics.json").status_code == 401
    assert get(client, "/partners/portal/feeds/politics.json").status_code == 200
    by_query = client.get("/partners/portal/feeds/politics.json", params={"key": PORTAL_KEY})
    assert by_query.status_code == 200

    created = client.post("/api/partners/portal/keys", json={"label": "2027"}, headers=ADMIN)
    assert created.status_code == 201 and created.json()["key"].startswith("gzp_")
    new_key = created.json()["key"]
    assert get(client, "/partners/portal/feeds/politics.json", key=new_key).status_code == 200
    assert get(client, "/partners/portal/feeds/politics.json").status_code == 200  # both work while rotating
    keys = client.get("/api/partners/portal", headers=ADMIN).json()["keys"]
    old = next(k for k in keys if k["label"] == "config")
    assert old["last_used_at"] == "2026-11-25T00:00:00Z" and new_key not in json.dumps(keys)
    assert client.delete(f"/api/partners/portal/keys/{old['id']}", headers=ADMIN).status_code == 200
    revoked = get(client, "/partners/portal/feeds/politics.json")
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
    assert get(client, "/partners/portal/feeds/politics.json", key=new_key).status_code == 200


def test_licensing_and_unknown_feeds(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    assert titles(get(client, "/partners/portal/feeds/politics.json")) == ["기사 4", "기사 1"]
    assert titles(get(client, "/partners/portal/feeds/all.json")) == ["기사 4", "기사 2", "기사 1"]  # no culture
    refused = get(client, "/partners/portal/feeds/culture.json")
    assert refused.status_code == 403 and "does not license 'culture'" in refused.json()["error"]
    for path in ("/partners/portal/feeds/sports.json", "/partners/portal/feeds/politics.xml"):
        missing = get(client, path)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong_method = client.post("/partners/portal/feeds/politics.json")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "Method Not Allowed"


def test_embargo_follows_the_injected_clock(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    assert sorted(titles(get(client, "/partners/late/feeds/all.json", key=LATE_KEY))) == ["기사 1", "기사 2", "기사 3"]
    services.clock.now = NOW + timedelta(minutes=19, seconds=59)
    assert "기사 4" not in titles(get(client, "/partners/late/feeds/all.json", key=LATE_KEY))
    services.clock.now = NOW + timedelta(minutes=20)  # published 10 minutes before NOW, embargo 30 minutes
    assert titles(get(client, "/partners/late/feeds/all.json", key=LATE_KEY))[0] == "기사 4"


def test_item_content_links_and_attribution(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    item = get(client, "/partners/portal/feeds/politics.json").json()["items"][1]
    assert item["url"].startswith("https://news.example.com/r/")
    assert 'href="https://news.example.com/2?utm_medium=syndication&amp;utm_source=portal"' in item["content_html"]
    assert 'href="https://other.example.org/x"' in item["content_html"] and "<img" in item["content_html"]
    assert item["content_html"].endswith(f'<p class="gazette-attribution">이 기사는 한빛일보에서 제공했습니다. 원문: '
                                         f'<a href="{item["url"]}">https://news.example.com/1</a></p>')
    assert item["_gazette"] == {"canonical_url": "https://news.example.com/1", "partner": "portal",
                                "attribution": "이 기사는 한빛일보에서 제공했습니다."}
    landing = client.get(item["url"], headers={"User-Agent": BROWSER})
    assert landing.status_code == 302
    assert landing.headers["location"] == "https://news.example.com/1?utm_medium=syndication&utm_source=portal"
    assert services.store.clicks(articles()["rich"].id) == {"partner": 1}

    late = get(client, "/partners/late/feeds/politics.json", key=LATE_KEY).json()["items"][0]  # summary, no images
    assert late["content_html"] == (f'<p>요약 1</p><p class="gazette-attribution">출처: 한빛일보 원문: '
                                    f'<a href="{late["url"]}">https://news.example.com/1</a></p>')
    assert "image" not in late
    bare = client.get(late["url"], headers={"User-Agent": BROWSER})
    assert bare.headers["location"] == "https://news.example.com/1"  # utm = {}

    rss = ET.fromstring(get(client, "/partners/portal/feeds/all.rss").content).find("channel")
    assert all(i.findtext("link").startswith("https://news.example.com/r/") for i in rss.findall("item"))
    atom = ET.fromstring(get(client, "/partners/portal/feeds/economy.atom").content)
    self_link = atom.find(f"{ATOM}link[@rel='self']").get("href")
    assert self_link == "https://news.example.com/partners/portal/feeds/economy.atom"  # never with the key
    assert "원문" in atom.find(f"{ATOM}entry/{ATOM}content").text


def test_conditional_get_gzip_and_private_caching(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    first = get(client, "/partners/portal/feeds/politics.rss", **{"Accept-Encoding": "identity"})
    assert first.status_code == 200 and first.headers["cache-control"] == "private, max-age=300"
    assert "Authorization" in first.headers["vary"] and "content-encoding" not in first.headers
    fresh = get(client, "/partners/portal/feeds/politics.rss", **{"If-None-Match": first.headers["etag"]})
    assert fresh.status_code == 304 and fresh.content == b"" and fresh.headers["etag"] == first.headers["etag"]
    since = get(client, "/partners/portal/feeds/politics.rss", **{"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    zipped = client.get("/partners/portal/feeds/politics.rss",
                       headers={"Authorization": f"Bearer {PORTAL_KEY}", "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == first.content  # httpx unzips
    assert int(zipped.headers["content-length"]) < len(first.content)


def test_rate_limit_answers_429_with_retry_after(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    statuses = [get(client, "/partners/tiny/feeds/politics.json", key=TINY_KEY).status_code for _ in range(2)]
    limited = get(client, "/partners/tiny/feeds/politics.json", key=TINY_KEY)
    assert statuses == [200, 200] and limited.status_code == 429 and limited.headers["retry-after"] == "30"
    assert "2 requests a minute" in limited.json()["error"]
    assert get(client, "/partners/portal/feeds/politics.json").status_code == 200  # per partner
    services.clock.now = NOW + timedelta(seconds=30)
    assert get(client, "/partners/tiny/feeds/politics.json", key=TINY_KEY).status_code == 200
    usage = client.get("/api/partners/tiny/usage", headers=ADMIN).json()["days"][0]
    assert (usage["requests"], usage["rate_limited"]) == (4, 1)


def test_usage_counts_requests_304s_bytes_articles_and_clicks(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    plain = {"Accept-Encoding": "identity"}
    first = get(client, "/partners/portal/feeds/politics.json", **plain)
    get(client, "/partners/portal/feeds/politics.json", **plain, **{"If-None-Match": first.headers["etag"]})
    second = get(client, "/partners/portal/feeds/all.json", **plain)
    get(client, "/partners/portal/feeds/culture.json")
    client.get(first.json()["items"][0]["url"],
              headers={"User-Agent": BROWSER})
    services.clock.now = NOW + timedelta(days=1)
    get(client, "/partners/portal/feeds/economy.json", **plain)
    assert client.get("/api/partners/portal/usage").status_code == 401
    usage = client.get("/api/partners/portal/usage", headers=ADMIN).json()
    assert usage["timezone"] == "Asia/Seoul" and [d["day"] for d in usage["days"]] == ["2026-11-26", "2026-11-25"]
    assert usage["days"][1] == {"day": "2026-11-25", "requests": 4, "not_modified": 1, "rate_limited": 0,
                                "bytes": len(first.content) + len(second.content), "articles": 3, "clicks": 1,
                                "last_fetch_at": "2026-11-25T00:00:00Z"}
    assert usage["days"][0]["articles"] == 1 and usage["days"][0]["requests"] == 1


def test_admin_api_lists_and_creates_partners(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    assert client.get("/api/partners").status_code == 401
    listed = client.get("/api/partners", headers=ADMIN)
    assert [p["slug"] for p in listed.json()["items"]] == ["late", "portal", "tiny"]
    assert PORTAL_KEY not in listed.text and hashlib.sha256(PORTAL_KEY.encode()).hexdigest() not in listed.text
    body = {"slug": "news-site", "name": "뉴스사이트", "categories": ["culture"], "embargo_minutes": 5}
    created = client.post("/api/partners", json=body, headers=ADMIN)
    assert created.status_code == 201 and created.json()["partner"]["origin"] == "admin"
    key = created.json()["key"]["key"]
    assert titles(get(client, "/partners/news-site/feeds/culture.json", key=key)) == ["기사 3"]  # no restart needed
    assert client.post("/api/partners", json=body, headers=ADMIN).status_code == 409
    bad = client.post("/api/partners", json={**body, "slug": "x", "categories": ["sports"]}, headers=ADMIN)
    assert bad.status_code == 422 and "categories[0]" in bad.json()["error"]
    assert client.get("/api/partners/nobody/usage", headers=ADMIN).status_code == 404


def test_demo_partner_takes_its_categories_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(ROOT / "examples" / "demo.toml",
                             {"GAZETTE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"})
    services = service.Components(settings, clock=Clock())
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(1), make_article(2, category="economy"),
                                    make_article(3, category="culture")], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        for slug in ("politics", "economy", "all"):
            for fmt in ("rss", "atom", "json"):
                assert get(client, f"/partners/portal/feeds/{slug}.{fmt}",
                           key="demo-partner-key-0123456789abcdef").status_code == 200
        assert get(client, "/partners/portal/feeds/culture.json",
                   key="demo-partner-key-0123456789abcdef").status_code == 403
    services.engine.dispose()


# --- push -----------------------------------------------------------------------------------------------------------

class Receiver:
    """A partner's push endpoint on 127.0.0.1: checks the signature itself and fails the first `fail_first` calls."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first, self.calls, self.taken, self.bad = fail_first, [], [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Gazette-Signature", "")):
                    receiver.bad += 1
                    self.send_response(401)
                else:
                    receiver.calls.append(self.headers["X-Gazette-Delivery"])
                    if len(receiver.calls) <= receiver.fail_first:
                        self.send_response(503)
                    else:
                        receiver.taken.append((self.headers["X-Gazette-Delivery"], json.loads(body)))
                        self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_push_reaches_a_failing_receiver_exactly_once_signed(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    with Receiver(fail_first=2) as receiver:
        dead = f"http://127.0.0.1:{free_port()}/push"  # nothing listens: every attempt fails
        extra = f"""
            [admin]
            token = "admin-token-0123456789"

            [feeds]
            refresh = "1h"

            [[partners]]
            slug = "wire"
            name = "통신"
            categories = ["politics"]
            embargo_minutes = 5
            callback_url = "{receiver.url}"
            callback_secret = "{SECRET}"

            [[partners]]
            slug = "dead"
            name = "닫힌곳"
            categories = ["all"]
            callback_url = "{dead}"
            callback_secret = "{SECRET}"
            """
        settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=extra), {})
        services = service.Components(settings, clock=clock)
        services.prepare_database(migrate=True)  # the callbacks start at NOW: older articles are not pushed
        old, a1, a2, a3 = (make_article(1, published_at=NOW - timedelta(hours=1)),
                           make_article(2, published_at=NOW + timedelta(minutes=1)),
                           make_article(3, category="economy", published_at=NOW + timedelta(minutes=1)),
                           make_article(4, published_at=NOW + timedelta(minutes=2)))
        services.store.upsert_articles([old, a1, a2, a3], source_id=None, now=NOW + timedelta(minutes=2))

        def worker(is_leader: bool = True) -> PushWorker:
            return PushWorker(settings, services.partners, services.pushes, services.store, services.redirects,
                              clock, is_leader=lambda: is_leader, interval=timedelta(hours=1),
                              policy=PushPolicy(max_attempts=3, first_delay=timedelta(seconds=10), timeout=5))

        follower, leader = worker(is_leader=False), worker()
        clock.now = NOW + timedelta(minutes=10)
        assert follower.step().queued == 0 and receiver.calls == []  # only the lease holder pushes
        clock.now = NOW + timedelta(minutes=3)
        first = leader.step()
        assert (first.queued, first.failed, receiver.calls) == (3, 3, [])  # dead's three; wire's are embargoed
        clock.now = NOW + timedelta(minutes=6)  # a1 is out of embargo
        for seconds in (0, 10, 30, 70, 150):
            clock.now += timedelta(seconds=seconds)
            leader.step()
        clock.now = NOW + timedelta(hours=2)
        for _ in range(3):
            leader.step()

        assert receiver.bad == 0 and len(receiver.calls) == 4  # a1 twice failed, then a1 and a3 taken
        assert receiver.calls[0] == receiver.calls[1] == receiver.calls[2]  # a retry keeps its delivery id
        taken = {doc["items"][0]["_gazette"]["canonical_url"]: (delivery, doc) for delivery, doc in receiver.taken}
        assert sorted(taken) == ["https://news.example.com/2", "https://news.example.com/4"]  # each once
        delivery, doc = taken["https://news.example.com/2"]
        assert doc["_gazette"] == {"delivery_id": delivery, "partner": "wire", "event": "article.published",
                                   "ninjs": doc["_gazette"]["ninjs"]}  # the ninjs item: tests/test_ninjs.py
        assert doc["_gazette"]["ninjs"]["uri"] == doc["items"][0]["id"]
        assert doc["items"][0]["url"].startswith("https://news.example.com/r/")
        assert doc["feed_url"] == "https://news.example.com/partners/wire/feeds/politics.json"

        leader.stop()
        follower.stop()
        with InProcessClient(service.create_app(services)) as client:
            parked = client.get("/api/partners/dead/pushes?status=parked", headers=ADMIN).json()["items"]
            assert len(parked) == 3 and all(p["attempts"] == 3 for p in parked)
            assert all(p["last_error"].startswith("ConnectError") for p in parked)
            wire = client.get("/api/partners/wire", headers=ADMIN).json()["pushes"]
            assert wire == {"pending": 0, "delivered": 2, "parked": 0, "dropped": 0}
            again = client.post(f"/api/partners/dead/pushes/{parked[0]['delivery_id']}/retry", headers=ADMIN)
            assert again.status_code == 200 and again.json()["status"] == "pending"
            assert client.post("/api/partners/dead/pushes/nope/retry", headers=ADMIN).status_code == 404
        assert PushQueue(services.engine).counts("dead") == {"pending": 1, "delivered": 0, "parked": 2, "dropped": 0}
        services.engine.dispose()


# --- the CLI, as a user runs it -------------------------------------------------------------------------------------

def run(args: list[str], cwd: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(gazette_command() + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_cli_keys_and_the_demo_partner_over_a_real_server(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "gazette.toml").symlink_to("examples/demo.toml")
    subprocess.run([sys.executable, "examples/build_demo.py", "var/demo"], cwd=tmp_path, check=True,
                   capture_output=True)
    run(["db", "upgrade"], tmp_path)
    run(["ingest"], tmp_path)
    key = run(["partners", "key", "create", "portal", "--label", "rotation"], tmp_path).stdout.strip()
    assert key.startswith("gzp_")
    added = run(["partners", "add", "daily", "--name", "데일리", "--categories", "culture", "--embargo-minutes", "0"],
                tmp_path).stdout.strip()
    assert "--categories" in run(["partners", "add", "x", "--name", "X", "--categories", "sports"],
                                                 tmp_path, expect=2).stderr
    listed = run(["partners", "list"], tmp_path).stdout
    assert "portal (한빛포털) [config]: politics, economy" in listed and "daily (데일리) [admin]: culture" in listed
    assert key not in listed and "demo-partner-key" not in listed
    port = free_port()
    base = f"http://127.0.0.1:{port}/partners"
    with subprocess.Popen(gazette_command() + ["serve", "--port", str(port)], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            wait_healthy(port, server)
            demo = {"Authorization": "Bearer demo-partner-key-0123456789abcdef"}
            assert httpx.get(f"{base}/portal/feeds/politics.json", headers=demo).status_code == 200
            assert httpx.get(f"{base}/portal/feeds/culture.json", headers=demo).status_code == 403
            assert httpx.get(f"{base}/daily/feeds/culture.rss", params={"key": added}).status_code == 200
            assert httpx.get(f"{base}/portal/feeds/all.atom", params={"key": key}).status_code == 200
            key_id = next(line.split()[1] for line in run(["partners", "list"], tmp_path).stdout.splitlines()
                          if "(rotation)" in line)
            run(["partners", "key", "revoke", "portal", key_id], tmp_path)
            assert httpx.get(f"{base}/portal/feeds/all.atom", params={"key": key}).status_code == 403  # at once
            run(["partners", "key", "revoke", "portal", "99"], tmp_path, expect=1)
            usage = httpx.get(f"http://127.0.0.1:{port}/api/partners/portal/usage",
                              headers={"Authorization": "Bearer demo-admin-token-change-me"}).json()
            assert usage["days"][0]["requests"] == 4 and usage["days"][0]["articles"] > 0
        finally:
            server.terminate()
            server.wait(timeout=20)

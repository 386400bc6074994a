"""Hostile input to Web Push ([push]): subscription bodies built to make Gazette POST somewhere it should not, or to
store what it cannot use; other sites' pages trying to subscribe or unsubscribe a reader (origin, CORS, content type);
floods; a name that resolves to loopback at send time; script in an alert's words reaching the browser.

The site runs with `allow_insecure_endpoints = false`, as in production, and one extra allowed origin.
"""

from __future__ import annotations

import base64
import json

import pytest

from feeds.outbound import guarded_transport
from newsletter.alerts import AlertDraft
from newsletter.push_keys import read_vapid_key
from newsletter.push_subscriptions import PushSubscriber
from newsletter.web_push import PushSender
from tests.conftest import InProcessClient
from tests.push_service import LoopbackPushService
from tests.test_web_push import SUBJECT, make_site

SITE = {"Origin": "https://news.example.com"}
NEWSROOM = {"Origin": "https://www.example.com"}
EXTRA = """origins = ["https://www.example.com"]

[[categories]]
slug = "culture"
name = "</script><script>alert(1)</script>"
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GOOD_KEY = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
GOOD_AUTH = "tBHItJI5svbpez7KI4CCXg"
ENDPOINT = "https://fcm.googleapis.com/fcm/send/dGVzdC1zdWJzY3JpcHRpb24"


def body(endpoint: str = ENDPOINT, p256dh: str = GOOD_KEY, auth: str = GOOD_AUTH, **extra: object) -> dict:
    return {"subscription": {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": p256dh, "auth": auth}},
            **extra}


@pytest.fixture
def push_site(tmp_path, clock, smtp_server):  # type: ignore[no-untyped-def]
    import service

    _, url = smtp_server
    services, public = make_site(tmp_path, clock, url, insecure=False, extra=EXTRA)
    with InProcessClient(service.create_app(services)) as client:
        yield services, client, public
    services.close()


def test_a_good_subscription_is_taken(push_site) -> None:  # type: ignore[no-untyped-def]
    services, client, _ = push_site
    answer = client.post("/push/subscriptions", json=body(categories=["politics"]), headers=SITE)
    assert answer.status_code == 201 and answer.headers["access-control-allow-origin"] == SITE["Origin"]
    assert services.push_store.count() == 1


NOT_ON_CURVE = b64(b"\x04" + b"\x01" * 64)
HOSTILE = {
    "http endpoint": body("http://push.example.com/x"),
    "private address": body("https://10.0.0.5/push"),
    "loopback": body("https://127.0.0.1:8443/push"),
    "ipv6 loopback": body("https://[::1]/push"),
    "ipv4-mapped ipv6": body("https://[::ffff:169.254.169.254]/latest"),
    "metadata address": body("https://169.254.169.254/latest/meta-data"),
    "localhost": body("https://localhost/push"),
    "single-label host": body("https://intranet/push"),
    "user in url": body("https://user:pw@push.example.com/x"),
    "fragment": body("https://push.example.com/x#y"),
    "javascript url": body("javascript:alert(1)"),
    "newline in endpoint": body("https://push.example.com/x\r\nX-Injected: 1"),
    "space in endpoint": body("https://push.example.com/a b"),
    "non-ascii endpoint": body("https://push.example.com/알림"),
    "endpoint too long": body("https://push.example.com/" + "a" * 1000),
    "endpoint not a string": body(["https://push.example.com/x"]),  # type: ignore[arg-type]
    "bad port": body("https://push.example.com:99999/x"),
    "not a push service": body("https://victim.example.com/api/hook"),
    "a push service's name as a prefix": body("https://fcm.googleapis.com.evil.example/fcm/send/x"),
    "a push service's name as a suffix": body("https://evilfcm.googleapis.com/fcm/send/x"),
    "p256dh too short": body(p256dh=b64(b"\x04" + b"\x01" * 32)),
    "p256dh compressed": body(p256dh=b64(b"\x02" + b"\x01" * 32)),
    "p256dh not on the curve": body(p256dh=NOT_ON_CURVE),
    "p256dh not base64": body(p256dh="!!!!" * 20),
    "auth too short": body(auth=b64(b"\x00" * 15)),
    "auth too long": body(auth=b64(b"\x00" * 32)),
    "auth a number": body(auth=16),  # type: ignore[arg-type]
    "extra top-level field": body(is_admin=True),
    "extra subscription field": {"subscription": {**body()["subscription"], "callback": "https://evil.example"}},
    "extra key": {"subscription": {**body()["subscription"], "keys": {"p256dh": GOOD_KEY, "auth": GOOD_AUTH,
                                                                      "x": "1"}}},
    "no keys": {"subscription": {"endpoint": ENDPOINT}},
    "expirationTime an object": {"subscription": {**body()["subscription"], "expirationTime": {"a": [1] * 100}}},
    "unknown section": body(categories=["sports"]),
    "sections not a list": body(categories="politics"),
    "section not a string": body(categories=[{"slug": "politics"}]),
    "too many sections": body(categories=["politics"] * 50),
    "unknown language": body(lang="fr"),
    "zone a path": body(zone="../../etc/passwd"),
    "zone a folder": body(zone="Asia"),
    "ads a string": body(ads="yes"),
    "a list": [body()],
    "null": None,
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_subscription_is_refused_with_the_reason(push_site, case: str) -> None:  # type: ignore[no-untyped-def]
    services, client, _ = push_site
    answer = client.post("/push/subscriptions", content=json.dumps(HOSTILE[case]),
                         headers={**SITE, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]
    assert services.push_store.count() == 0


@pytest.mark.parametrize(("case", "headers", "content", "status"), [
    ("no origin", {"Content-Type": "application/json"}, json.dumps(body()), 403),
    ("another site", {"Origin": "https://evil.example", "Content-Type": "application/json"}, json.dumps(body()), 403),
    ("a look-alike origin", {"Origin": "https://news.example.com.evil.example", "Content-Type": "application/json"},
     json.dumps(body()), 403),
    ("null origin (sandboxed frame)", {"Origin": "null", "Content-Type": "application/json"}, json.dumps(body()), 403),
    ("a plain form post", {**SITE, "Content-Type": "application/x-www-form-urlencoded"}, "a=1", 415),
    ("text/plain (no preflight)", {**SITE, "Content-Type": "text/plain"}, json.dumps(body()), 415),
    ("not JSON", {**SITE, "Content-Type": "application/json"}, "{not json", 400),
    ("not UTF-8", {**SITE, "Content-Type": "application/json"}, b"\xff\xfe{}", 400),
    ("oversized", {**SITE, "Content-Type": "application/json"}, json.dumps(body(pad="x" * 5000)), 413),
])
def test_requests_from_elsewhere_or_malformed_never_subscribe(push_site, case, headers, content, status) -> None:  # type: ignore[no-untyped-def]
    services, client, _ = push_site
    answer = client.post("/push/subscriptions", content=content, headers=headers)
    assert answer.status_code == status, (case, answer.text)
    assert "error" in answer.json()
    if status == 403:
        assert "access-control-allow-origin" not in answer.headers
    assert services.push_store.count() == 0


def test_the_preflight_answers_only_the_allowed_origins(push_site) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = push_site
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    for path in ("/push/subscriptions", "/push/subscriptions/unsubscribe"):
        allowed = client.request("OPTIONS", path, headers={**NEWSROOM, **asked})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
        assert allowed.headers["access-control-allow-methods"] == "POST"
        refused = client.request("OPTIONS", path, headers={"Origin": "https://evil.example", **asked})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_another_site_cannot_unsubscribe_a_reader(push_site) -> None:  # type: ignore[no-untyped-def]
    services, client, _ = push_site
    assert client.post("/push/subscriptions", json=body(), headers=NEWSROOM).status_code == 201
    evil = client.post("/push/subscriptions/unsubscribe", json={"endpoint": ENDPOINT},
                       headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and services.push_store.count() == 1
    for hostile in ({"endpoint": 5}, {"endpoint": ENDPOINT, "also": 1}, {"endpoint": "x" * 1001}, [ENDPOINT]):
        assert client.post("/push/subscriptions/unsubscribe", json=hostile, headers=SITE).status_code == 422
    unknown = client.post("/push/subscriptions/unsubscribe", json={"endpoint": ENDPOINT + "x"}, headers=SITE)
    done = client.post("/push/subscriptions/unsubscribe", json={"endpoint": ENDPOINT}, headers=SITE)
    assert unknown.status_code == done.status_code == 200 and unknown.json() == done.json()  # no oracle
    assert services.push_store.count() == 0


def test_a_flood_from_one_address_is_limited(push_site) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = push_site
    statuses = [client.post("/push/subscriptions", json=body(f"{ENDPOINT}{i}"), headers=SITE).status_code
                for i in range(31)]
    assert statuses[:30] == [201] * 30 and statuses[30] == 429
    limited = client.post("/push/subscriptions", json=body(), headers=SITE)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_the_scripts_carry_configured_words_as_data(push_site) -> None:  # type: ignore[no-untyped-def]
    _, client, public = push_site
    script = client.get("/push/subscribe.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "<script>alert(1)" not in script.text  # the section's name cannot end the script it sits in
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in script.text
    assert public in script.text and "__GAZETTE__" not in script.text
    assert "innerHTML" not in script.text and "innerHTML" not in client.get("/push/sw.js").text
    assert client.get("/push/key").json() == {"publicKey": public}


@pytest.mark.parametrize(("endpoint", "services", "taken"), [
    ("https://updates.push.services.mozilla.com/wpush/v2/abc", None, True),  # the defaults: the browsers' services
    ("https://web.push.apple.com/QGuQyavXutnMH", None, True),
    ("https://wns2-par02p.notify.windows.com/w/?token=abc", None, True),
    ("https://push.example.net/x", None, False),
    ("https://push.example.net/x", ["push.example.net"], True),  # the operator's own list
    ("https://fcm.googleapis.com/fcm/send/x", ["push.example.net"], False),
    ("https://push.example.net/x", [], True),  # an empty list: any public host
])
def test_endpoints_only_on_the_push_services_configured(endpoint: str, services: list[str] | None,
                                                        taken: bool) -> None:
    from newsletter.push_subscriptions import PushRefused, check_endpoint
    from newsletter.settings import PUSH_SERVICES

    allowed = PUSH_SERVICES if services is None else tuple(services)
    if taken:
        assert check_endpoint(endpoint, allow_insecure=False, services=allowed) == endpoint
    else:
        with pytest.raises(PushRefused, match="not a push service"):
            check_endpoint(endpoint, allow_insecure=False, services=allowed)


def test_a_name_that_resolves_to_loopback_is_not_pushed_to(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding: the endpoint passed the checks (a public-looking https name), and resolves to 127.0.0.1 when
    Gazette connects. The guard refuses the address; nothing reaches the server there."""
    _, url = smtp_server
    services, public = make_site(tmp_path, clock, url, insecure=False)
    settings = services.settings.push
    with LoopbackPushService(public, SUBJECT) as push_service:
        browser = push_service.browser("victim")
        port = push_service.url.rsplit(":", 1)[1]
        sender = PushSender(settings, read_vapid_key(settings.vapid_private_key_file),
                            transport=guarded_transport(False, resolver=lambda host, p: ["127.0.0.1"]))
        subscriber = PushSubscriber(1, f"https://push.rebind.example:{port}/push/victim", browser.p256dh,
                                    b64(browser.auth), (), None, None, False)
        outcome = sender.send(subscriber, b'{"title":"x"}', topic="t")
        sender.close()
        assert outcome.status == "failed" and "refused" in (outcome.error or "")
        assert push_service.messages("victim") == [] and push_service.refusals == []
    services.close()


def test_script_in_an_alert_reaches_the_browser_as_data(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    _, url = smtp_server
    services, public = make_site(tmp_path, clock, url)
    title = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    with LoopbackPushService(public, SUBJECT) as push_service, \
            InProcessClient(service.create_app(services)) as client:
        browser = push_service.browser("phone")
        assert client.post("/push/subscriptions", json={"subscription": browser.subscription()},
                           headers=SITE).status_code == 201
        alert = services.alerts.create(AlertDraft(subject=title, text="</script>\u2028본문"), created_by=None)
        services.alerts.send(alert.id)
        [message] = push_service.messages("phone")
    assert message["title"] == "[속보] " + title and message["body"] == "</script>\u2028본문"  # data, as written
    services.close()

"""Subscribers: tokens, rate limits, CSRF, suppression, export and erasure; the pages over real HTTP with a real
SMTP server. The same flow in a real browser is in test_browser.py."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

import httpx
import pytest

from feeds.core.limits import RateLimiter
from newsletter.errors import RateLimited, SubscriberError, TokenError
from newsletter.records import Choices, Consent, LinkOwner
from newsletter.settings import load_settings
from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens
from tests.conftest import NOW, Clock, ServerThread, filled, wait_until, write_config

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


# --- tokens -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "later", "purpose", "change", "expected"), [
    ("fresh confirmation", timedelta(hours=47), "confirm", None, "ok"),
    ("expired confirmation", timedelta(hours=49), "confirm", None, "expired"),
    ("unsubscribe a year on", timedelta(days=365), "unsubscribe", None, "ok"),
    ("unsubscribe used for confirm", timedelta(0), "unsubscribe", "purpose", "invalid"),
    ("tampered payload", timedelta(0), "preferences", "tamper", "invalid"),
    ("other signing key", timedelta(0), "preferences", "key", "invalid"),
    ("garbage", timedelta(0), "confirm", "garbage", "invalid"),
])
def test_tokens(case: str, later: timedelta, purpose: str, change: str | None, expected: str) -> None:
    clock = Clock()
    tokens = Tokens("k" * 32, clock)
    token = tokens.for_subscriber(purpose, "opaque-id-7")
    reader, read_as = tokens, purpose
    if change == "purpose":
        read_as = "confirm"
    elif change == "tamper":
        head, _, rest = token.partition(".")
        token = head[:-2] + ("AA" if head[-2:] != "AA" else "BB") + "." + rest
    elif change == "key":
        reader = Tokens("x" * 32, clock)
    elif change == "garbage":
        token = "not-a-token"
    clock.now = NOW + later
    if expected == "ok":
        assert reader.subscriber_of(read_as, token) == LinkOwner(public_id="opaque-id-7")
    else:
        with pytest.raises(TokenError) as info:
            reader.subscriber_of(read_as, token)
        assert info.value.reason == expected


def test_csrf_token_is_bound_to_its_cookie() -> None:
    tokens = Tokens("k" * 32, Clock())
    cookie = tokens.new_csrf_secret()
    field = tokens.csrf_field(cookie)
    assert tokens.is_csrf_valid(cookie, field)
    assert not tokens.is_csrf_valid(tokens.new_csrf_secret(), field)  # someone else's cookie
    assert not tokens.is_csrf_valid(cookie, None)
    assert not tokens.is_csrf_valid(None, field)
    assert not tokens.is_csrf_valid(cookie, field + "x")


def test_rate_limiter_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, timedelta(minutes=10), clock)
    assert limiter.hit("1.2.3.4") == 0 and limiter.hit("1.2.3.4") == 0
    wait = limiter.hit("1.2.3.4")
    assert 590 <= wait <= 601
    assert limiter.hit("5.6.7.8") == 0  # another client is not affected
    clock.now += timedelta(minutes=10, seconds=1)
    assert limiter.hit("1.2.3.4") == 0


# --- the store: consent, rate limit per address, suppression ------------------------------------------------

@pytest.fixture
def subs(engine) -> SubscriberStore:  # type: ignore[no-untyped-def]
    return SubscriberStore(engine, ["daily", "weekly"])


def test_one_confirmation_mail_per_address_per_hour(subs: SubscriberStore, clock: Clock) -> None:
    asked = subs.request_confirmation("Kim@Example.COM", clock())
    pending = asked.subscriber
    assert (asked.action, pending.email, pending.status, asked.is_new) == ("confirm", "Kim@example.com", "pending", True)
    with pytest.raises(RateLimited) as info:
        subs.request_confirmation("Kim@example.com", clock() + timedelta(minutes=59))
    assert 55 <= info.value.retry_after <= 60
    subs.release_confirmation(pending.id)  # the mail could not be sent: the slot is given back
    subs.request_confirmation("Kim@example.com", clock() + timedelta(minutes=1))
    assert subs.confirmed("daily") == []  # nothing is active before confirmation


def test_confirm_records_consent_and_choices(subs: SubscriberStore, clock: Clock, engine) -> None:  # type: ignore[no-untyped-def]
    from newsletter.db import subscribers

    asked = subs.request_confirmation("kim@example.com", clock())
    pending = asked.subscriber
    choices = Choices(categories=("economy",), editions=("weekly",), name="김독자", language="ko",
                      timezone="Asia/Seoul", ads=True)
    consent = Consent(privacy_text="수집·이용에 동의합니다", ads_text="광고 수신에 동의합니다", ip_hash="abc")
    active = subs.confirm(pending.id, pending.public_id, choices, nonce=asked.nonce, now=clock(), consent=consent)
    assert (active.status, active.categories, active.editions, active.name) == ("confirmed", ("economy",), ("weekly",),
                                                                               "김독자")
    assert active.ad_consent_at == NOW
    with engine.connect() as conn:
        row = conn.execute(subscribers.select()).one()
    assert (row.consent_method, row.consent_text, row.consent_ip_hash) == ("form", "수집·이용에 동의합니다", "abc")
    assert row.confirmed_at == NOW
    # Two consents, each its own record with the words shown.
    assert [(c["kind"], c["granted"], c["text"]) for c in subs.consents(active.id)] == [
        ("privacy", True, "수집·이용에 동의합니다"), ("ads", True, "광고 수신에 동의합니다")]
    again = subs.confirm(pending.id, pending.public_id, choices, nonce=asked.nonce, now=clock() + timedelta(hours=1),
                         consent=consent)  # a second click changes nothing
    assert again.confirmed_at == NOW and len(subs.consents(active.id)) == 2
    manage = subs.request_confirmation("kim@example.com", clock() + timedelta(hours=2))
    assert manage.action == "manage" and manage.subscriber.categories == ("economy",)  # the form can't change choices
    with pytest.raises(SubscriberError):
        subs.confirm(pending.id, "someone-else", choices, nonce=asked.nonce, now=clock(), consent=consent)


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced", "complained", "erased"])
def test_suppressed_addresses_stay_out_of_import_and_admin(subs: SubscriberStore, clock: Clock, reason: str) -> None:
    _, kim = subs.add("kim@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=True,
                      method="admin")
    assert kim is not None
    if reason == "erased":
        assert subs.erase(kim.id, now=clock())
        assert subs.find("kim@example.com") is None
    else:
        subs.unsubscribe(kim.id, kim.public_id, now=clock(), reason=reason)
    assert subs.is_suppressed("KIM@example.com") or reason != "erased"
    report = subs.import_csv("email\nkim@example.com\n", known_categories=["politics"], now=clock(), confirmed=True)
    assert (report.added, report.suppressed) == (0, (2,))
    outcome, _ = subs.add("kim@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=True,
                          method="admin")
    assert outcome == "suppressed"
    assert subs.confirmed("daily") == []
    # Only the person can come back: a fresh confirmation through the form lifts the suppression.
    asked = subs.request_confirmation("kim@example.com", clock() + timedelta(hours=2))
    subs.confirm(asked.subscriber.id, asked.subscriber.public_id, Choices(("politics",), ("daily",)),
                 nonce=asked.nonce, now=clock(), consent=Consent("동의", ""))
    assert [s.email for s in subs.confirmed("daily")] == ["kim@example.com"]
    assert not subs.is_suppressed("kim@example.com")


def test_unsubscribe_is_idempotent_and_pause_stops_mail(subs: SubscriberStore, clock: Clock) -> None:
    _, kim = subs.add("kim@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=True,
                      method="admin")
    assert kim is not None
    paused = subs.update_preferences(kim.id, kim.public_id, Choices(("politics",), ("daily",)), is_paused=True,
                                     now=clock()).subscriber
    assert paused.paused_at == NOW and subs.confirmed("daily") == []
    subs.update_preferences(kim.id, kim.public_id, Choices(("politics",), ("daily",)), is_paused=False, now=clock())
    first = subs.unsubscribe(kim.id, kim.public_id, now=clock()).subscriber
    second = subs.unsubscribe(kim.id, kim.public_id, now=clock() + timedelta(days=1)).subscriber
    assert first.unsubscribed_at == second.unsubscribed_at == NOW


def test_export_and_erase(subs: SubscriberStore, clock: Clock) -> None:
    _, kim = subs.add("kim@example.com", name="김독자", categories=["politics"], editions=["daily"], now=clock(),
                      confirmed=True, method="admin", consent_text="phone call")
    assert kim is not None
    record = subs.export(kim.id)
    assert record is not None
    assert (record["email"], record["name"], record["consent_method"], record["consent_text"]) == (
        "kim@example.com", "김독자", "admin", "phone call")
    assert record["deliveries"] == []
    assert subs.erase(kim.id, now=clock()) and subs.export(kim.id) is None
    assert not subs.erase(kim.id, now=clock())


# --- the pages over real HTTP --------------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path, smtp_server, clock):  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}",
                                          mail_url=url, extra='[admin]\ntoken = "admin-token-0123456789"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    with ServerThread(service.create_app(services)) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client, recorder, services
    services.close()


def form_of(client: httpx.Client, path: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return filled(page.text)  # type: ignore[return-value]


def confirm(client: httpx.Client, link: str) -> httpx.Response:
    """What a reader does: open the link (a page with one button; the GET changes nothing), then press it."""
    page = client.get(link)
    assert page.status_code == 200 and 'id="confirm"' in page.text, page.text
    action = re.search(r'<form[^>]* method="post" action="([^"]+)" id="confirm">', page.text)[1]  # type: ignore[index]
    return client.post(action.replace("&amp;", "&"))


def link_in(message: bytes, path: str) -> str:
    parsed = email.message_from_bytes(message, policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(rf"https://news\.example\.com(/{path}/\S+)", text)[1]  # type: ignore[index]


def test_subscribe_confirm_preferences_unsubscribe(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    fields = form_of(client, "/subscribe")
    answer = client.post("/subscribe", data={**fields, "email": "reader@example.com", "name": "독자",
                                             "categories": ["economy"], "editions": ["weekly"]})
    assert answer.status_code == 200 and "메일함을 확인해 주세요" in answer.text
    assert services.subscribers.confirmed("weekly") == []
    [mail] = recorder.to("reader@example.com")
    parsed = email.message_from_bytes(mail, policy=policy.default)
    assert parsed["Subject"] == "[한빛일보] 뉴스레터 구독을 확인해 주세요"
    assert services.subscribers.confirmed("weekly") == [] and client.head(link_in(mail, "confirm")).status_code == 200
    confirmed = confirm(client, link_in(mail, "confirm"))
    assert confirmed.status_code == 200 and "구독이 시작되었습니다" in confirmed.text and "경제" in confirmed.text
    [active] = services.subscribers.confirmed("weekly")
    assert (active.email, active.categories, active.name) == ("reader@example.com", ("economy",), "독자")

    preferences = re.search(r'id="preferences" href="https://news\.example\.com([^"]+)"', confirmed.text)[1]  # type: ignore[index]
    fields = form_of(client, preferences)
    saved = client.post(preferences, data={**fields, "categories": ["politics", "economy"], "editions": ["daily"],
                                           "timezone": "America/New_York"})
    assert saved.status_code == 200 and "저장했습니다" in saved.text
    [changed] = services.subscribers.confirmed("daily")
    assert (changed.categories, changed.timezone) == (("politics", "economy"), "America/New_York")

    unsubscribe = re.search(r'id="unsubscribe" href="https://news\.example\.com([^"]+)"', saved.text)[1]  # type: ignore[index]
    with httpx.Client(base_url=str(client.base_url)) as mail_client:  # no cookie, no CSRF token: RFC 8058
        for _ in range(2):  # idempotent
            done = mail_client.post(unsubscribe, data=ONE_CLICK)
            assert done.status_code == 200 and "수신을 거부했습니다" in done.text
    assert services.subscribers.confirmed("daily") == []
    later = client.get(unsubscribe)
    assert "다시 구독하기" in later.text
    fields = form_of(client, unsubscribe)
    back = client.post(unsubscribe.replace("/unsubscribe/", "/resubscribe/"), data=fields)
    assert back.status_code == 200 and "다시 구독을 시작했습니다" in back.text
    assert [s.email for s in services.subscribers.confirmed("daily")] == ["reader@example.com"]


@pytest.mark.parametrize(("case", "change", "status", "says"), [
    ("no CSRF token", {"csrf": ""}, 403, "양식이 만료되었습니다"),
    ("bad address", {"email": "not an address"}, 400, "올바른 이메일 주소가 아닙니다"),
    ("header injection", {"email": "a@example.com\r\nBcc: victim@example.com"}, 400, "올바른 이메일 주소가 아닙니다"),
    ("no category", {"categories": []}, 400, "받을 분야를 하나 이상"),
    ("unknown category", {"categories": ["sports"]}, 400, "받을 분야를 하나 이상"),
    ("unknown edition", {"editions": ["hourly"]}, 400, "받을 뉴스레터를 하나 이상"),
    ("no edition", {"editions": []}, 400, "받을 뉴스레터를 하나 이상"),
    ("no consent", {"privacy": ""}, 400, "개인정보 수집·이용에 동의하셔야"),
    ("bad time zone", {"timezone": "Mars/Olympus"}, 400, "알 수 없는 시간대"),
    ("honeypot", {"website": "http://spam.example"}, 200, "메일함을 확인해 주세요"),
])
def test_bad_subscribe_requests_send_nothing(site, case: str, change: dict, status: int, says: str) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    data = {**form_of(client, "/subscribe"), "email": "reader@example.com", "categories": ["economy"],
            "editions": ["daily"], **change}
    answer = client.post("/subscribe", data=data)
    assert answer.status_code == status and says in answer.text
    assert recorder.messages == []
    assert services.subscribers.find("reader@example.com") is None


def test_rate_limits_answer_429(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, _ = site
    data = {**form_of(client, "/subscribe"), "email": "victim@example.com", "categories": ["economy"]}
    assert client.post("/subscribe", data=data).status_code == 200
    again = client.post("/subscribe", data=data)
    assert again.status_code == 429 and "한 시간 안에" in again.text and int(again.headers["retry-after"]) > 3000
    assert len(recorder.to("victim@example.com")) == 1  # the form cannot flood a victim
    answers = [client.post("/subscribe", data={**data, "email": f"r{i}@example.com"}).status_code for i in range(10)]
    assert answers[-1] == 429 and "Retry-After".lower() in client.post("/subscribe", data=data).headers


def test_names_are_escaped_in_mail_and_page(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    data = {**form_of(client, "/subscribe?lang=en"), "email": "x@example.com", "name": "<script>alert(1)</script>\r\nBcc: y@example.com",
            "categories": ["economy"]}
    assert client.post("/subscribe", data=data).status_code == 200
    [mail] = recorder.messages
    assert recorder.messages[0][1] == ["x@example.com"]
    parsed = email.message_from_bytes(mail[2], policy=policy.default)
    assert parsed["Subject"] == "[한빛일보] Please confirm your subscription"
    confirmed = confirm(client, link_in(mail[2], "confirm"))
    assert confirmed.status_code == 200 and "<script>" not in confirmed.text
    [s] = services.subscribers.confirmed("daily")
    assert s.name == "<script>alert(1)</script>Bcc: y@example.com"  # kept as typed, minus the line break


@pytest.mark.parametrize(("case", "path", "status", "says"), [
    ("tampered confirm", "/confirm/eyJzIjoxfQ.abc.def", 400, "올바르지 않은 링크"),
    ("tampered preferences", "/preferences/xyz", 400, "올바르지 않은 링크"),
    ("tampered unsubscribe", "/unsubscribe/xyz", 400, "새 링크 받기"),
])
def test_bad_links_get_a_friendly_page(site, case: str, path: str, status: int, says: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = site
    answer = client.get(path)
    assert answer.status_code == status and says in answer.text
    assert client.post(path, data=ONE_CLICK).status_code == status


def test_expired_confirmation_and_erased_subscriber(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    data = {**form_of(client, "/subscribe"), "email": "late@example.com", "categories": ["economy"]}
    client.post("/subscribe", data=data)
    link = link_in(recorder.messages[0][2], "confirm")
    clock.now = NOW + timedelta(days=3)
    expired = client.get(link)
    assert expired.status_code == 410 and "유효 기간이 지났습니다" in expired.text and "/link" in expired.text
    assert client.post(link).status_code == 410
    assert services.subscribers.confirmed("daily") == []

    _, kim = services.subscribers.add("kim@example.com", categories=["economy"], editions=["daily"], now=clock(),
                                      confirmed=True, method="admin")
    token = services.tokens.for_subscriber("unsubscribe", kim.public_id)
    services.subscribers.erase(kim.id, now=clock())
    assert client.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 410


def test_new_link_page_does_not_tell_who_is_subscribed(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    services.subscribers.add("kim@example.com", categories=["economy"], editions=["daily"], now=clock(), confirmed=True,
                             method="admin")
    answers = [client.post("/link", data={**form_of(client, "/link"), "email": address})
               for address in ("kim@example.com", "nobody@example.com")]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].text.replace("kim@", "X@") == answers[1].text.replace("nobody@", "X@")
    [mail] = wait_until(lambda: recorder.messages, 5)  # sent after the answer: the answer's time tells nothing
    assert mail[1] == ["kim@example.com"]
    assert client.get(link_in(mail[2], "preferences")).status_code == 200


def test_admin_api_subscribers(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, services = site
    auth = {"Authorization": "Bearer admin-token-0123456789"}
    assert client.get("/api/subscribers").status_code == 401
    added = client.post("/api/subscribers", headers=auth, json={"email": "Kim@Example.com", "categories": ["economy"],
                                                                "confirmed": True})
    assert added.status_code == 201 and added.json()["subscriber"]["email"] == "Kim@example.com"
    assert client.post("/api/subscribers", headers=auth, json={"email": "x@example.com", "categories": ["sports"]}
                       ).status_code == 400
    assert client.post("/api/subscribers", headers=auth, json={"email": "nope"}).status_code == 400
    listing = client.get("/api/subscribers", headers=auth, params={"status": "confirmed"}).json()
    assert listing["total"] == 1
    record = client.get("/api/subscribers/Kim@example.com", headers=auth).json()
    assert record["consent_method"] == "admin"
    assert client.delete("/api/subscribers/Kim@example.com", headers=auth).status_code == 204
    assert client.get("/api/subscribers/Kim@example.com", headers=auth).status_code == 404
    again = client.post("/api/subscribers", headers=auth, json={"email": "kim@example.com", "confirmed": True})
    assert again.status_code == 409 and "only the person" in again.json()["error"]

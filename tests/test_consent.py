"""Consent as Korean law asks, and links that carry no address: the app in-process (`InProcessClient`), its mail
through a real SMTP server on loopback.

개인정보 보호법 §15②/§22 (the required notice and its own checkbox), 정보통신망법 §50① (separate, optional consent
to advertising), §50⑦ (the result told), §50⑧ with 시행령 §62-3 (asked again every two years).
"""

from __future__ import annotations

import base64
import email
import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from newsletter.records import Choices
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    InProcessClient,
    filled,
    migrated_sqlite_url,
    run_gazette,
    wait_until,
    write_config,
)
from tests.test_store import make_article
from tests.test_subscribers import ONE_CLICK, confirm

EDITIONS = """
[digests.daily]
schedule = "0 7 * * *"

[digests.offers]
schedule = "0 12 * * *"
ad = true
label = { ko = "제휴 소식", en = "Partner offers" }
"""
TOKEN_PATHS = ("confirm", "preferences", "unsubscribe", "archive", "consent", "r")


@pytest.fixture
def site(tmp_path, smtp_server, clock):  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=url,
                          extra=EDITIONS)
    config.write_text(config.read_text().replace('[site]\n', '[site]\nprivacy_url = "https://news.example.com/privacy"\n', 1))
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=True)
    with InProcessClient(service.create_app(services)) as client:
        yield client, recorder, services
    services.close()


def text_of(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]


def subject_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["Subject"])


def links(raw: bytes, kind: str) -> list[str]:
    return re.findall(rf"https://news\.example\.com(/{kind}/\S+)", text_of(raw))


def subscribe(client: InProcessClient, recorder, address: str, *, ads: bool) -> None:  # type: ignore[no-untyped-def]
    data = {**filled(client.get("/subscribe").text), "email": address, "categories": ["economy"],
            "editions": ["daily", "offers"]}
    if ads:
        data["ads"] = "1"
    assert client.post("/subscribe", data=data).status_code == 200
    [mail] = recorder.to(address)
    assert confirm(client, links(mail, "confirm")[0]).status_code == 200


def test_the_form_states_what_is_collected_and_refuses_without_the_required_consent(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    page = client.get("/subscribe").text
    for words in ("개인정보 수집·이용 동의 (필수)", "수집 항목", "수집·이용 목적", "보유·이용 기간", "동의를 거부할 권리",
                  "광고성 정보", "(선택)", 'href="https://news.example.com/privacy"'):
        assert words in page
    assert 'name="privacy" value="1" required' in page and 'name="ads" value="1">' in page  # ads: never pre-ticked
    for path in ("/link", "/link?lang=en"):  # every page links the privacy policy
        assert 'href="https://news.example.com/privacy" rel="privacy-policy"' in client.get(path).text
    data = {**filled(page), "email": "reader@example.com", "categories": ["economy"]}
    refused = client.post("/subscribe", data={**data, "privacy": ""})
    assert refused.status_code == 400 and "동의하셔야" in refused.text
    assert recorder.messages == [] and services.subscribers.find("reader@example.com") is None


def test_consents_are_separate_records_with_the_words_shown_and_the_result_is_told(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    subscribe(client, recorder, "yes@example.com", ads=True)
    subscribe(client, recorder, "no@example.com", ads=False)
    yes, no = services.subscribers.find("yes@example.com"), services.subscribers.find("no@example.com")
    assert yes.ad_consent_at == NOW and no.ad_consent_at is None
    records = services.subscribers.consents(yes.id)
    assert [(r["kind"], r["granted"]) for r in records] == [("privacy", True), ("ads", True)]
    assert "수집·이용 목적" not in records[0]["text"] and "뉴스레터 발송" in records[0]["text"]  # the notice's words
    assert "광고성 정보" in records[1]["text"]
    assert [(r["kind"], r["granted"]) for r in services.subscribers.consents(no.id)] == [("privacy", True),
                                                                                         ("ads", False)]
    # The result of the consent, told on confirmation (the welcome is off: the consent result alone).
    [result] = [m for m in recorder.to("yes@example.com") if "수신 동의 처리 결과" in subject_of(m)]
    assert "광고성 정보 수신: 동의" in text_of(result) and "전송자: 한빛일보" in text_of(result)

    # Withdrawn on the preferences page: recorded, and told (§50⑦).
    preferences = links(result, "preferences")[0]
    form = filled(client.get(preferences).text)
    assert form.get("ads") == ["1"]
    form.pop("ads")
    assert client.post(preferences, data=form).status_code == 200
    assert services.subscribers.find("yes@example.com").ad_consent_at is None
    [notice] = [m for m in recorder.to("yes@example.com") if "수신 거부 처리 결과" in subject_of(m)]
    assert "광고성 정보 수신 거부(동의 철회)" in text_of(notice)
    assert services.subscribers.consents(yes.id)[-1]["kind"] == "ads"
    assert services.subscribers.consents(yes.id)[-1]["granted"] is False


def test_advertising_consent_is_asked_again_every_two_years(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    subscribe(client, recorder, "ads@example.com", ads=True)
    subscribe(client, recorder, "plain@example.com", ads=False)
    asked = lambda: [m for m in recorder.to("ads@example.com") if "수신 동의 여부 확인" in subject_of(m)]  # noqa: E731
    for days, expected in ((729, 0), (730, 1), (730, 1), (900, 1), (1459, 1), (1461, 2), (1461, 2)):
        clock.now = NOW + timedelta(days=days)
        services.audience_jobs.reconfirm_ads()
        assert len(asked()) == expected, days
    assert not [m for m in recorder.to("plain@example.com") if "수신 동의 여부 확인" in subject_of(m)]
    body = text_of(asked()[0])
    # 시행령 §62-3: the sender, the date of consent and that it was given, how to keep or withdraw it.
    assert "전송자: 한빛일보" in body and "수신 동의 날짜: 2026년 11월 25일" in body
    assert "/preferences/" in body and links(asked()[0], "consent")
    subscriber = services.subscribers.find("ads@example.com")
    assert [r["method"] for r in services.subscribers.consents(subscriber.id)].count("reconfirm") == 2

    # Kept with the button: the next question is two years from now.
    keep = links(asked()[-1], "consent")[0]
    page = client.get(keep)
    assert page.status_code == 200 and "계속 받으시겠습니까" in page.text
    assert client.post(keep, data={}).status_code == 403  # a form: the CSRF token is needed
    kept = client.post(keep, data=filled(page.text))
    assert kept.status_code == 200 and "유지했습니다" in kept.text
    assert services.subscribers.find("ads@example.com").ad_consent_at == clock.now
    clock.now += timedelta(days=729)
    services.audience_jobs.reconfirm_ads()
    assert len(asked()) == 2


def test_no_link_in_any_mail_carries_an_address(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    services.store.upsert_articles([make_article(1, category="economy", published_at=NOW - timedelta(hours=1))],
                                   source_id=None, now=NOW)
    subscribe(client, recorder, "Reader.Kim@example.com", ads=True)
    services.send("daily", NOW, everyone=True)
    clock.now = NOW + timedelta(days=731)
    services.audience_jobs.reconfirm_ads()
    mails = recorder.to("Reader.Kim@example.com")
    assert len(mails) == 4  # confirmation, consent result, the digest, the two-yearly question
    tokens = []
    for raw in mails:
        parsed = email.message_from_bytes(raw, policy=policy.default)
        found = [t for kind in TOKEN_PATHS for t in re.findall(rf"/{kind}/(?:\d+/)?([\w.-]+)", text_of(raw))]
        found += re.findall(r"/unsubscribe/([\w.-]+)", str(parsed.get("List-Unsubscribe", "")))
        assert found, subject_of(raw)
        tokens += found
    for token in tokens:
        decoded = payload_of(token)
        assert "@" not in decoded and "reader" not in decoded.lower(), decoded


def payload_of(token: str) -> str:
    """What anyone holding a signed link can read of it (itsdangerous: base64 JSON, zlib-compressed after a '.')."""
    compressed = token.startswith(".")
    body = token.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode("utf-8", "replace")


def test_the_archive_token_opens_only_the_archive(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    services.store.upsert_articles([make_article(1, category="economy", published_at=NOW - timedelta(hours=1))],
                                   source_id=None, now=NOW)
    subscribe(client, recorder, "reader@example.com", ads=False)
    services.send("daily", NOW, everyone=True)
    [digest] = [m for m in recorder.to("reader@example.com") if b"List-Unsubscribe-Post" in m]
    archive = links(digest, "archive")[0]
    token = archive.rsplit("/", 1)[1]
    page = client.get(archive)
    assert page.status_code == 200 and "reader@example.com" not in page.text and "/unsubscribe/" not in page.text
    for path in (f"/preferences/{token}", f"/unsubscribe/{token}", f"/consent/{token}"):
        assert client.get(path).status_code == 400
        assert client.post(path, data=ONE_CLICK).status_code == 400
    assert services.subscribers.find("reader@example.com").status == "confirmed"


def test_links_made_before_opaque_ids_work_until_they_expire(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    _, kim = services.subscribers.add("kim@example.com", categories=["economy"], editions=["daily"], now=clock(),
                                      confirmed=True, method="admin")
    old = services.tokens.make("preferences", {"s": kim.id, "e": kim.email})  # the format before migration 0011
    page = client.get(f"/preferences/{old}")
    assert page.status_code == 200 and "kim@example.com" in page.text
    old_unsubscribe = services.tokens.make("unsubscribe", {"s": kim.id, "e": "someone@else.example"})
    assert client.post(f"/unsubscribe/{old_unsubscribe}", data=ONE_CLICK).status_code == 410  # not kim's address
    clock.now = NOW + timedelta(days=401)
    assert client.get(f"/preferences/{old}").status_code == 410


def test_an_operator_added_reader_gives_the_required_consent_on_the_confirmation_page(site, clock) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    result = run_gazette(["--config", str(services.settings.path), "subscribers", "add", "invited@example.com",
                          "--editions", "daily"], expect=0)
    # The command signs the link on the real clock: the page reads it on a clock set after that, never before (a
    # clock read first could be a second behind the link's whole-second stamp, and the link would look expired).
    clock.now = datetime.now(UTC)
    assert "confirmation mail sent" in result.stdout
    [mail] = recorder.to("invited@example.com")
    link = links(mail, "confirm")[0]
    page = client.get(link)
    assert 'name="privacy"' in page.text and "수집 항목" in page.text, page.text[-600:]
    action = re.search(r'<form[^>]* action="([^"]+)" id="confirm">', page.text)[1].replace("&amp;", "&")  # type: ignore[index]
    assert client.post(action).status_code == 400  # not without the required consent
    assert client.post(action, data={"privacy": "1"}).status_code == 200
    assert services.subscribers.find("invited@example.com").status == "confirmed"
    assert json.dumps(services.subscribers.consents(services.subscribers.find("invited@example.com").id),
                      ensure_ascii=False).count('"privacy"') == 1


# --- what a reader who leaves or withdraws in the middle of a run gets: nothing more -----------------------------

ADS_EDITIONS = """
[digests.daily]
schedule = "0 7 * * *"
ad = true
"""


@pytest.fixture
def ad_services(tmp_path, smtp_server, clock):  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=url,
                          extra=ADS_EDITIONS)
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(1, category="economy", published_at=NOW - timedelta(hours=1))],
                                   source_id=None, now=NOW)
    for address in ("kim@example.com", "lee@example.com"):
        _, s = services.subscribers.add(address, categories=["economy"], editions=["daily"], now=NOW, confirmed=True,
                                        method="admin")
        services.subscribers.update_preferences(s.id, s.public_id, Choices(s.categories, s.editions, ads=True),
                                                is_paused=False, now=NOW)
    yield services, recorder
    services.close()


def test_a_retry_in_the_run_is_not_sent_to_a_reader_who_withdrew_meanwhile(ad_services, clock) -> None:  # type: ignore[no-untyped-def]
    services, relay = ad_services
    relay.fail_rcpt = {"lee@example.com": "451 4.3.0 relay busy, try later"}
    lee = services.subscribers.find("lee@example.com")

    def meanwhile(seconds: float) -> None:  # while the run waits to retry, lee withdraws advertising consent
        services.subscribers.update_preferences(lee.id, lee.public_id, Choices(lee.categories, lee.editions, ads=False),
                                                is_paused=False, now=clock())
        relay.fail_rcpt = {}
        clock.now += timedelta(seconds=seconds)

    services.sleep = meanwhile
    clock.now = NOW + timedelta(hours=1)  # 10:00 KST
    report = services.send("daily", NOW, everyone=True)
    assert report.sent == 1 and relay.to("kim@example.com") and not relay.to("lee@example.com")
    [row] = services.deliveries.rows(report.edition_id, statuses=("failed",))[1]
    assert "no longer receives" in (row.last_error or "")


def test_mail_held_for_the_night_is_dropped_for_a_reader_who_left(ad_services, clock) -> None:  # type: ignore[no-untyped-def]
    services, relay = ad_services
    clock.now = NOW + timedelta(hours=13)  # 22:00 KST: both held until 08:00
    night = services.send("daily", NOW, everyone=True)
    assert night.held == 2
    lee = services.subscribers.find("lee@example.com")
    services.subscribers.unsubscribe(lee.id, lee.public_id, now=clock())
    clock.now = NOW + timedelta(hours=23, minutes=1)  # 08:01 KST
    services.audience_jobs.resume_editions()
    assert relay.to("kim@example.com") and not relay.to("lee@example.com")
    counts = services.deliveries.counts(night.edition_id)
    assert counts == {"sent": 1, "skipped": 1}
    assert services.audience_jobs.resume_editions() == "nothing to resume"  # the run is finished, not resumed every 5 minutes


def test_a_reader_who_left_gives_no_consent_and_is_told_once(site) -> None:  # type: ignore[no-untyped-def]
    client, recorder, services = site
    subscribe(client, recorder, "gone@example.com", ads=True)
    gone = services.subscribers.find("gone@example.com")
    unsubscribe = f"/unsubscribe/{services.tokens.for_subscriber('unsubscribe', gone.public_id)}"
    preferences = f"/preferences/{services.tokens.for_subscriber('preferences', gone.public_id)}"
    for _ in range(2):
        assert client.post(unsubscribe, data=ONE_CLICK).status_code == 200
    form = {**filled(client.get(preferences).text), "categories": ["economy"], "ads": "1"}
    assert client.post(preferences, data=form).status_code == 200  # an old link of someone who left
    assert services.subscribers.find("gone@example.com").ad_consent_at is None
    assert client.post(unsubscribe, data=ONE_CLICK).status_code == 200
    withdrawn = [r for r in services.subscribers.consents(gone.id) if r["kind"] == "ads" and not r["granted"]]
    assert len(withdrawn) == 1
    told = lambda: [m for m in recorder.to("gone@example.com") if "수신 거부 처리 결과" in subject_of(m)]  # noqa: E731
    wait_until(told)  # sent after the answer
    assert len(told()) == 1

"""`/admin/partners`: creating a partner through the partner rule, a key shown once, rotation, revocation, the
terms edited, usage as a chart with its numbers, parked pushes retried; who may do which; the audit log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from feeds.partners import KEY_PREFIX
from tests.conftest import NOW
from tests.console.conftest import Console
from tests.security.conftest import stored_article

NEW = {"slug": "daum", "name": "다음 뉴스", "categories": ["politics", "economy"], "content": "summaries",
       "include_images": "on", "embargo_minutes": "30", "rate_limit": "120", "utm": "utm_source=daum\nutm_medium=feed",
       "attribution": "연합 제공", "callback_url": "", "callback_secret": ""}
KEY_RE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{40,}")


def shown_key(page: str) -> str:
    found = KEY_RE.findall(page)
    assert len(found) == 1, "the page shows no key, or more than one"
    return found[0]


def partner_key_works(console: Console, slug: str, key: str) -> int:
    return console.client().get(f"/partners/{slug}/feeds/all.json", headers={"Authorization": f"Bearer {key}"}).status_code


def test_creating_a_partner_shows_its_first_key_once(console: Console) -> None:
    admin = console.login("admin")
    answer = admin.post("/admin/partners", NEW)
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    assert "location" not in answer.headers  # a page, not a redirect: no URL ever carries the key
    key = shown_key(answer.text)
    partner = console.services.partners.partner("daum")
    assert partner is not None and partner.name == "다음 뉴스" and partner.categories == ("politics", "economy")
    assert not partner.full_content and partner.embargo_minutes == 30 and partner.rate_limit == 120
    assert dict(partner.utm) == {"utm_source": "daum", "utm_medium": "feed"} and partner.attribution == "연합 제공"
    assert partner_key_works(console, "daum", key) == 200
    for path in ("/admin/partners", "/admin/partners/daum", "/admin/audit", "/api/partners/daum"):
        again = admin.client.get(path)
        assert again.status_code == 200 and key not in again.text and not KEY_RE.search(again.text), path
    [entry] = console.services.audit.entries(action="partner.create")
    assert entry.actor == "admin@news.example.com" and entry.target == "partner:daum"
    assert entry.after["first_key"]["fingerprint"] == console.services.partners.keys("daum")[0].fingerprint
    assert key not in str(entry.after)


@pytest.mark.parametrize("change, words", [
    pytest.param({"slug": "Bad Slug"}, "partner.slug", id="slug"),
    pytest.param({"categories": ["sports"]}, "partner.categories[0]", id="unknown-category"),
    pytest.param({"categories": []}, "partner.categories", id="no-category"),
    pytest.param({"embargo_minutes": "99999"}, "partner.embargo_minutes", id="embargo"),
    pytest.param({"rate_limit": "lots"}, "partner.rate_limit", id="not-a-number"),
    pytest.param({"utm": "source=x"}, "partner.utm.source", id="utm"),
    pytest.param({"callback_url": "ftp://x.example"}, "partner.callback_url", id="callback-url"),
    pytest.param({"callback_url": "https://x.example/hook"}, "partner.callback_secret", id="no-secret"),
    pytest.param({"slug": "portal"}, "exists already", id="slug-taken"),
])
def test_a_partner_is_checked_by_the_same_rule_as_the_cli_and_api(console: Console, change: dict, words: str) -> None:
    admin = console.login("admin")
    answer = admin.post("/admin/partners", {**NEW, **change})
    assert answer.status_code in (409, 422) and words in answer.text
    assert 'value="다음 뉴스"' in answer.text  # what was typed stays in the form
    assert [p.slug for p in console.services.partners.partners()] == ["portal"]
    assert console.services.audit.entries(action="partner.") == []


def test_rotating_a_key_is_one_flow_new_key_then_revoke_the_old(console: Console) -> None:
    admin = console.login("admin")
    old_key = shown_key(admin.post("/admin/partners", NEW).text)
    [old] = console.services.partners.keys("daum")
    page = admin.post(f"/admin/partners/daum/keys/{old.id}/rotate")
    assert page.status_code == 201 and page.headers["cache-control"] == "no-store"
    new_key = shown_key(page.text)
    assert f'action="/admin/partners/daum/keys/{old.id}/revoke"' in page.text  # the second half, on the same page
    assert partner_key_works(console, "daum", old_key) == 200 and partner_key_works(console, "daum", new_key) == 200
    done = admin.post(f"/admin/partners/daum/keys/{old.id}/revoke")
    assert done.status_code == 303 and done.headers["location"] == "/admin/partners/daum?flash=console_flash_key_revoked"
    assert partner_key_works(console, "daum", old_key) == 403 and partner_key_works(console, "daum", new_key) == 200
    actions = [(e.action, e.after.get("replaces")) for e in reversed(console.services.audit.entries(action="partner.key"))]
    assert actions == [("partner.key_create", old.id), ("partner.key_revoke", None)]
    shown = admin.client.get("/admin/partners/daum").text
    assert new_key not in shown and "폐기됨" in shown


def test_revoking_asks_first_and_a_config_partner_keys_can_be_managed(console: Console) -> None:
    admin = console.login("admin")
    [key] = console.services.partners.keys("portal")
    confirm = admin.client.get(f"/admin/partners/portal/keys/{key.id}/revoke")
    assert confirm.status_code == 200 and f'action="/admin/partners/portal/keys/{key.id}/revoke"' in confirm.text
    assert console.services.partners.keys("portal")[0].revoked_at is None  # a GET changes nothing
    assert admin.post(f"/admin/partners/portal/keys/{key.id}/revoke").status_code == 303
    assert console.services.partners.keys("portal")[0].revoked_at is not None
    assert admin.post("/admin/partners/portal/keys/999/revoke").status_code == 404


def test_a_new_key_with_a_label(console: Console) -> None:
    admin = console.login("admin")
    answer = admin.post("/admin/partners/portal/keys", {"label": "CMS <2>"})
    assert answer.status_code == 201
    key = shown_key(answer.text)
    assert partner_key_works(console, "portal", key) == 200
    assert console.services.partners.keys("portal")[-1].label == "CMS <2>"
    assert "CMS &lt;2&gt;" in admin.client.get("/admin/partners/portal").text
    assert admin.post("/admin/partners/portal/keys", {"label": "config"}).status_code == 422


def test_the_terms_of_an_admin_partner_can_change_a_config_partner_is_read_only(console: Console) -> None:
    admin = console.login("admin")
    admin.post("/admin/partners", {**NEW, "callback_url": "https://hook.example/in", "callback_secret": "s" * 20})
    page = admin.client.get("/admin/partners/daum").text
    assert 'action="/admin/partners/daum"' in page and "s" * 20 not in page
    answer = admin.post("/admin/partners/daum", {**NEW, "name": "다음", "categories": ["economy"], "content": "full",
                                                 "callback_url": "https://hook.example/in", "callback_secret": ""})
    assert answer.status_code == 303
    partner = console.services.partners.partner("daum")
    assert partner is not None and partner.name == "다음" and partner.categories == ("economy",) and partner.full_content
    assert partner.push_secret == "s" * 20  # left empty: kept
    [entry] = console.services.audit.entries(action="partner.update")
    assert entry.before["categories"] == ["politics", "economy"] and entry.after["categories"] == ["economy"]
    assert "s" * 20 not in str(entry.before) + str(entry.after) and len(entry.after["callback_secret"]) == 8
    config_page = admin.client.get("/admin/partners/portal").text
    assert 'action="/admin/partners/portal"' not in config_page and "설정 파일" in config_page
    refused = admin.post("/admin/partners/portal", {**NEW, "slug": "portal"})
    assert refused.status_code == 409 and console.services.partners.partner("portal").name == "포털"


def test_usage_per_day_is_a_chart_with_its_numbers(console: Console) -> None:
    partners = console.services.partners
    for days_ago, requests in ((0, 3), (2, 5)):
        for _ in range(requests):
            partners.record_request("portal", NOW - timedelta(days=days_ago), status=200, sent_bytes=100)
    page = console.login("viewer").client.get("/admin/partners/portal").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "<script" not in svg and "http://kozea" not in svg and "cdn" not in svg.lower()
    assert "요청 8건" in page  # the summary
    table = page[page.index("<details>"):]
    assert NOW.date().isoformat() in table and (NOW - timedelta(days=2)).date().isoformat() in table


def parked_push(console: Console) -> str:
    services = console.services
    services.store.upsert_articles([stored_article(9, published_at=NOW)], source_id=None, now=NOW)
    admin = console.login("admin")
    admin.post("/admin/partners", {**NEW, "callback_url": "https://hook.example/in", "callback_secret": "s" * 20})
    partner = services.partners.partner("daum")
    assert partner is not None
    console.clock.now = NOW + timedelta(hours=1)
    assert services.pushes.enqueue(partner, console.clock.now) >= 1
    [push] = services.pushes.pushes("daum")
    services.pushes.failed(push, "HTTP 500: <b>boom</b>", console.clock.now, None)
    return push.delivery_id


def test_a_parked_push_is_shown_and_retried(console: Console) -> None:
    delivery_id = parked_push(console)
    admin = console.login("admin")
    page = admin.client.get("/admin/partners/daum").text
    assert "HTTP 500: &lt;b&gt;boom&lt;/b&gt;" in page and f"/pushes/{delivery_id}/retry" in page
    answer = admin.post(f"/admin/partners/daum/pushes/{delivery_id}/retry")
    assert answer.status_code == 303
    assert console.services.pushes.counts("daum")["pending"] == 1
    assert [e.after["delivery_id"] for e in console.services.audit.entries(action="partner.push_retry")] == [delivery_id]
    assert admin.post(f"/admin/partners/daum/pushes/{delivery_id}/retry").status_code == 404  # not parked any more


def test_an_editor_and_a_viewer_read_partners_but_change_nothing(console: Console) -> None:
    delivery_id = parked_push(console)
    [key] = console.services.partners.keys("daum")
    before = (console.services.partners.partners(), console.services.partners.keys("daum"),
              console.services.pushes.counts("daum"))
    for role in ("editor", "viewer"):
        session = console.login(role)
        page = session.client.get("/admin/partners/daum")
        assert page.status_code == 200 and "/rotate" not in page.text and "/keys\"" not in page.text
        assert session.client.get(f"/admin/partners/daum/keys/{key.id}/revoke").status_code == 403
        for path, data in (("/admin/partners", {**NEW, "slug": "other"}), ("/admin/partners/daum", NEW),
                           ("/admin/partners/daum/keys", {}), (f"/admin/partners/daum/keys/{key.id}/rotate", {}),
                           (f"/admin/partners/daum/keys/{key.id}/revoke", {}),
                           (f"/admin/partners/daum/pushes/{delivery_id}/retry", {})):
            answer = session.post(path, data)
            assert answer.status_code == 403, (role, path)
            assert not KEY_RE.search(answer.text)
    assert (console.services.partners.partners(), console.services.partners.keys("daum"),
            console.services.pushes.counts("daum")) == before
    assert [e.action for e in console.services.audit.entries(action="partner.")] == ["partner.create"]


def test_a_form_without_its_token_is_refused(console: Console) -> None:
    admin = console.login("admin")
    answer = admin.client.post("/admin/partners/portal/keys", data={"label": "x"})
    assert answer.status_code == 403 and len(console.services.partners.keys("portal")) == 1

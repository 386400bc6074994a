"""Attacks on the console's admin pages: markup through a partner's name, attribution, key label or a push's error,
and through audit values; a partner key leaking into logs, URLs, headers or the audit log; the callback secret too."""

from __future__ import annotations

import json
import logging
import re

import pytest

from feeds.partners import KEY_PREFIX
from tests.console.conftest import Console, console  # noqa: F401  (the fixture)
from tests.console.test_partners import NEW, parked_push, shown_key

SCRIPT = '<script>alert(1)</script>'
ATTR = '"><img src=x onerror=alert(1)>'
SECRET = "callback-secret-0123456789"


def no_markup_from_input(page: str) -> None:
    assert SCRIPT not in page and ATTR not in page and "<img src=x" not in page


def test_a_partners_words_are_text_on_every_page(console: Console) -> None:  # noqa: F811
    admin = console.login("admin")
    created = admin.post("/admin/partners", {**NEW, "name": f"이름 {SCRIPT}", "attribution": f"출처 {ATTR}"})
    assert created.status_code == 201
    no_markup_from_input(created.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in created.text
    key = console.services.partners.keys("daum")[0]
    labelled = admin.post("/admin/partners/daum/keys", {"label": ATTR})
    no_markup_from_input(labelled.text)
    for path in ("/admin/partners", "/admin/partners/daum", f"/admin/partners/daum/keys/{key.id}/revoke",
                 "/admin/audit"):
        page = admin.client.get(path)
        assert page.status_code == 200, path
        no_markup_from_input(page.text)
    refused = admin.post("/admin/partners", {**NEW, "slug": f"x{SCRIPT}", "name": SCRIPT})
    assert refused.status_code == 422
    no_markup_from_input(refused.text)


def test_a_push_error_from_a_partners_server_is_text(console: Console) -> None:  # noqa: F811
    delivery_id = parked_push(console)
    [push] = console.services.pushes.pushes("daum")
    console.services.pushes.retry("daum", delivery_id, console.clock.now)
    console.services.pushes.failed(push, f"HTTP 500: {SCRIPT}{ATTR}", console.clock.now, None)
    page = console.login("viewer").client.get("/admin/partners/daum").text
    no_markup_from_input(page)
    assert "&lt;script&gt;" in page


def test_audit_values_are_text(console: Console) -> None:  # noqa: F811
    from feeds.core.accounts import Actor
    console.services.audit.record(Actor("user", f"a{SCRIPT}@x", "admin"), f"x.{SCRIPT}", f"t:{ATTR}",
                                  before={"n": f"</pre>{SCRIPT}"}, after={ATTR: ATTR})
    admin = console.login("admin").client
    for path in ("/admin/audit", "/admin/audit?action=x.", f"/admin/audit?target={ATTR}"):
        page = admin.get(path).text
        no_markup_from_input(page)
        assert "</pre><script>" not in page


def test_audit_filters_are_literal(console: Console) -> None:  # noqa: F811
    admin = console.login("admin").client
    for query in ("actor=%25", "target=_", "action=%25"):
        entries = admin.get(f"/api/audit?{query}").json()["items"]
        assert entries == [], query  # no address or target holds % or _: the wildcards are not wildcards


def test_a_partner_key_goes_nowhere_but_its_one_page(console: Console, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    admin = console.login("admin")
    answers = [admin.post("/admin/partners", {**NEW, "callback_url": "https://hook.example/in",
                                              "callback_secret": SECRET})]
    first = console.services.partners.keys("daum")[0]
    answers.append(admin.post(f"/admin/partners/daum/keys/{first.id}/rotate"))
    answers.append(admin.post("/admin/partners/daum/keys", {"label": "third"}))
    keys = [shown_key(a.text) for a in answers]
    assert len(set(keys)) == 3
    answers.append(admin.post(f"/admin/partners/daum/keys/{first.id}/revoke"))
    answers.append(admin.post("/admin/partners/daum", {**NEW, "callback_url": "https://hook.example/in"}))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    audit = json.dumps([(e.action, e.target, e.before, e.after) for e in console.services.audit.entries(limit=500)],
                       ensure_ascii=False)
    for key in keys:
        assert key not in logged and key not in audit
        for answer in answers:
            assert key not in str(answer.url) and key not in json.dumps(dict(answer.headers))
    assert SECRET not in logged and SECRET not in audit
    for answer in answers[:3]:
        assert answer.headers["cache-control"] == "no-store" and "location" not in answer.headers
    for path in ("/admin/partners/daum", "/api/partners/daum", "/api/partners", "/api/audit?limit=500"):
        text = admin.client.get(path).text
        assert not re.search(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{40,}", text) and SECRET not in text, path


def test_the_usage_chart_runs_and_loads_nothing(console: Console) -> None:  # noqa: F811
    page = console.login("viewer").client.get("/admin/partners/portal").text
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    assert "<script" not in svg and "xlink:href=\"http" not in svg and "@import" not in svg
    assert not re.search(r"""(?:src|href)=["']https?://""", svg)


@pytest.mark.parametrize("path", ["/admin/partners/..%2Fusers", "/admin/partners/%3Cscript%3E",
                                  "/admin/users/99999999999999999999999/remove", "/admin/audit?before_id=abc"])
def test_odd_paths_are_answers_not_crashes(console: Console, path: str) -> None:  # noqa: F811
    answer = console.login("admin").client.get(path)
    assert answer.status_code in (404, 422)
    assert "<script>" not in answer.text

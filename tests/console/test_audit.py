"""`/admin/audit` and `GET /api/audit`: newest first, filtered by action prefix, actor and target, paged; admins only."""

from __future__ import annotations

import pytest

from feeds.core.accounts import Actor
from newsletter.http.console.audit import PAGE
from tests.console.conftest import ACCOUNTS, Console
from tests.security.conftest import ADMIN

ALICE = Actor("user", "alice@news.example.com", "admin", 1)
BOB = Actor("user", "bob@news.example.com", "editor", 2)


def fill(console: Console) -> None:
    audit = console.services.audit
    audit.record(ALICE, "partner.create", "partner:daum", after={"name": "다음", "categories": ["politics"]})
    audit.record(BOB, "source.update", "source:연합뉴스", before={"interval": 600}, after={"interval": 300})
    audit.record(ALICE, "partner.key_revoke", "partner:portal", after={"key_id": 1, "fingerprint": "abcd1234"})
    audit.record(BOB, "user.role", "user:carol@news.example.com", before={"role": "viewer"}, after={"role": "editor"})


def test_the_audit_page_shows_entries_newest_first_with_readable_changes(console: Console) -> None:
    fill(console)
    page = console.login("admin").client.get("/admin/audit").text
    page = page[page.index("<tbody>"):]
    positions = [page.index(f"<code>{a}</code>") for a in ("user.role", "partner.key_revoke", "source.update", "partner.create")]
    assert positions == sorted(positions)
    assert "&#34;interval&#34;: 300" in page or "&quot;interval&quot;: 300" in page  # indented JSON, escaped
    assert '"categories": [\n    "politics"\n  ]' in page.replace("&#34;", '"')
    assert "다음" in page  # not \\ub2e4 escapes


@pytest.mark.parametrize("query, expected", [
    pytest.param("action=partner.", ["partner.key_revoke", "partner.create"], id="action-prefix"),
    pytest.param("action=partner.create", ["partner.create"], id="one-action"),
    pytest.param("actor=bob", ["user.role", "source.update"], id="actor"),
    pytest.param("target=portal", ["partner.key_revoke"], id="target"),
    pytest.param("action=partner.&actor=alice&target=daum", ["partner.create"], id="together"),
    pytest.param("action=nothing.", [], id="none"),
])
def test_filters(console: Console, query: str, expected: list[str]) -> None:
    fill(console)
    admin = console.login("admin").client
    page = admin.get(f"/admin/audit?{query}").text
    table = page[page.index("<tbody>"):page.index("</tbody>")] if expected else ""
    shown = [a for a in ("user.role", "partner.key_revoke", "source.update", "partner.create", "user.login")
             if f"<code>{a}</code>" in table]
    assert sorted(shown) == sorted(expected)
    api = admin.get(f"/api/audit?{query}")
    assert api.status_code == 200
    assert [e["action"] for e in api.json()["items"] if e["action"] != "user.login"] == expected


def test_paging_goes_on_with_the_same_filters(console: Console) -> None:
    for n in range(PAGE + 5):
        console.services.audit.record(ALICE, "source.update", f"source:s{n}")
    admin = console.login("admin").client
    first = admin.get("/admin/audit?action=source.").text
    assert "source:s54" in first and "source:s4<" not in first
    older = first[first.index('href="/admin/audit?action=source.&amp;before_id='):].split('"')[1].replace("&amp;", "&")
    second = admin.get(older).text
    assert "source:s4<" in second and "source:s0<" in second and "source:s54" not in second
    assert 'href="/admin/audit?action=source."' in second  # back to the newest
    api = admin.get("/api/audit?action=source.&limit=50").json()
    assert len(api["items"]) == 50 and api["next_cursor"] is not None
    rest = admin.get("/api/audit", params={"action": "source.", "limit": 50, "cursor": api["next_cursor"]}).json()
    assert [e["target"] for e in rest["items"]] == [f"source:s{n}" for n in range(4, -1, -1)]
    assert rest["next_cursor"] is None


def test_the_api_reads_with_the_admin_token(console: Console) -> None:
    fill(console)
    answer = console.client().get("/api/audit?target=daum", headers=ADMIN)
    assert answer.status_code == 200
    [entry] = answer.json()["items"]
    assert entry["actor"] == "alice@news.example.com" and entry["after"] == {"name": "다음", "categories": ["politics"]}
    assert console.client().get("/api/audit?limit=0", headers=ADMIN).status_code == 422
    assert console.client().get("/api/audit?cursor=-1", headers=ADMIN).status_code == 422


def test_only_admins_read_the_audit_log(console: Console) -> None:
    fill(console)
    for role in ("editor", "viewer"):
        session = console.login(role)
        assert session.client.get("/admin/audit").status_code == 403
        assert session.client.get("/api/audit").status_code == 403
        assert "/admin/audit" not in session.client.get("/admin").text  # not in the navigation either
    assert console.client().get("/api/audit").status_code == 401
    assert console.client().get("/admin/audit").status_code == 303
    assert ACCOUNTS["admin"]  # the admin reads it: the tests above

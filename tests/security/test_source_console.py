"""Sources added through the admin API (and the console): the test button must not reach an address the operator
did not allow, and hostile names and URLs are refused or kept as plain data, never a way around a rule.

An "internal" service on 127.0.0.1 holds a secret feed; the file does not allow stored sources the private network
(`[admin] sources_private_network` is false), so no test, add or edit may reach it, whatever the URL's spelling, a
redirect or a definition's own `allow_private_network`. A "public" site on 127.0.0.2 (public under the test's address
rule, as in test_ssrf) redirects to the internal one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from feeds import db
from newsletter.settings import load_settings
from tests.conftest import DATA, Clock, InProcessClient, sqlite_copy, write_config
from tests.security.test_ssrf import Network
from tests.test_fetch import Site, respond

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
SECRET = "SECRET-INTERNAL-51c0"
SECRET_FEED = (DATA / "sources" / "atom_basic.atom").read_bytes().replace(b"<title>", f"<title>{SECRET} ".encode())
CONFIG = """
[admin]
token = "admin-token-0123456789"
"""


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    public = Site("127.0.0.2")
    internal = Site("127.0.0.1", public.port)
    internal.routes["/feed.xml"] = respond(200, SECRET_FEED, Content_Type="application/atom+xml")
    public.routes["/moved"] = respond(302, Location=f"http://127.0.0.1:{public.port}/feed.xml")
    public.routes["/feed.xml"] = respond(200, (DATA / "sources" / "atom_basic.atom").read_bytes(),
                                         Content_Type="application/atom+xml")
    yield public, internal
    public.close()
    internal.close()


@pytest.fixture
def api(tmp_path: Path, migrated_sqlite: Path, clock: Clock):  # type: ignore[no-untyped-def]
    """The app, its fetcher on the small world's DNS and address rule (news.example.test is public)."""
    import service
    from feeds.fetch import HostLimiter, HttpFetcher

    url = sqlite_copy(migrated_sqlite, tmp_path)
    services = service.Components(load_settings(write_config(tmp_path / "gazette.toml", database_url=url,
                                                             extra=CONFIG), {}), clock=clock)
    network = Network()
    services.__dict__["fetcher"] = HttpFetcher(timeout=2, deadline=5, limiter=HostLimiter(4, 0),
                                               resolver=network.resolve, rule=network.rule)
    services.prepare_database(migrate=False)
    with InProcessClient(service.create_app(services)) as client:
        yield client, services
    services.close()


def nothing_stored(services) -> bool:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        articles = conn.execute(sa.select(sa.func.count()).select_from(db.articles)).scalar_one()
        stored = conn.execute(sa.select(sa.func.count()).select_from(db.console_sources)).scalar_one()
    return articles == 0 and stored == 0


INTERNAL = [
    pytest.param("http://127.0.0.1:{port}/feed.xml", id="loopback"),
    pytest.param("http://localhost:{port}/feed.xml", id="localhost"),
    pytest.param("http://2130706433:{port}/feed.xml", id="decimal-ip"),
    pytest.param("http://0x7f.1:{port}/feed.xml", id="hex-ip"),
    pytest.param("http://[::ffff:127.0.0.1]:{port}/feed.xml", id="ipv4-mapped-ipv6"),
    pytest.param("http://internal.example.test:{port}/feed.xml", id="internal-by-name"),
    pytest.param("http://news.example.test:{port}/moved", id="public-redirecting-inside"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://10.0.0.1/feed.xml", id="private-range"),
]


@pytest.mark.parametrize("url", INTERNAL)
def test_the_test_button_never_reaches_an_address_the_file_did_not_allow(api, sites, url: str) -> None:  # type: ignore[no-untyped-def]
    client, services = api
    public, internal = sites
    answer = client.post("/api/sources/test", json={"kind": "feed", "url": url.format(port=public.port),
                                                    "category": "politics"}, headers=ADMIN)
    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert SECRET not in answer.text and internal.hits == {}
    assert nothing_stored(services)


def test_the_same_test_reads_a_public_site(api, sites) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    public, _ = sites
    answer = client.post("/api/sources/test", json={"kind": "feed", "url": f"http://news.example.test:{public.port}"
                                                    "/feed.xml", "category": "politics"}, headers=ADMIN)
    assert answer.status_code == 200 and answer.json()["items"]  # the refusals above are the policy, not a broken test


@pytest.mark.parametrize("body, key", [
    pytest.param({"allow_private_network": True}, "allow_private_network", id="asks-for-the-private-network"),
    pytest.param({"url": None, "path": "/etc/passwd"}, "path", id="local-file"),
    pytest.param({"url": "file:///etc/passwd"}, "url", id="file-url"),
    pytest.param({"url": "gopher://127.0.0.1:70/_x"}, "url", id="gopher"),
    pytest.param({"url": "javascript:alert(1)"}, "url", id="javascript"),
])
@pytest.mark.parametrize("route", ["/api/sources/test", "/api/sources"])
def test_a_definition_cannot_widen_its_own_policy(api, sites, body: dict, key: str, route: str) -> None:  # type: ignore[no-untyped-def]
    client, services = api
    public, internal = sites
    definition = {"name": "inside", "kind": "feed", "url": f"http://127.0.0.1:{public.port}/feed.xml",
                  "category": "politics", **body}
    answer = client.post(route, json={k: v for k, v in definition.items() if v is not None}, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"{key}: ")
    assert internal.hits == {} and nothing_stored(services)


def test_an_edit_cannot_widen_it_either(api, sites) -> None:  # type: ignore[no-untyped-def]
    client, services = api
    public, internal = sites
    added = client.post("/api/sources", json={"name": "site", "kind": "feed", "category": "politics",
                                              "url": f"http://news.example.test:{public.port}/feed.xml"}, headers=ADMIN)
    assert added.status_code == 201
    for change in ({"allow_private_network": True}, {"url": f"file:///etc/passwd"}, {"kind": "shell"}):
        refused = client.request("PATCH", "/api/sources/site", json=change, headers=ADMIN)
        assert refused.status_code == 422, refused.text
    moved = client.request("PATCH", "/api/sources/site", json={"url": f"http://127.0.0.1:{public.port}/feed.xml"},
                           headers=ADMIN)
    assert moved.status_code == 200  # a URL is a URL; where it leads is checked when it is fetched
    services.ingest("site")
    assert internal.hits == {}
    assert services.store.source("site").last_error and "loopback" in services.store.source("site").last_error
    assert SECRET not in client.post("/api/sources/site/test", headers=ADMIN).text


@pytest.mark.parametrize("name", [
    pytest.param("<script>alert(1)</script>", id="markup"),
    pytest.param("a/b/../../pause", id="slashes-and-dots"),
    pytest.param("test", id="the-test-route's-name"),
    pytest.param("'; DROP TABLE sources; --", id="sql"),
    pytest.param("연합뉴스 🗞", id="korean-and-emoji"),
    pytest.param("%2e%2e%2f", id="percent-escapes"),
])
def test_hostile_names_are_plain_data(api, sites, name: str) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    client, services = api
    public, _ = sites
    added = client.post("/api/sources", json={"name": name, "kind": "feed", "category": "politics",
                                              "url": f"http://news.example.test:{public.port}/feed.xml"}, headers=ADMIN)
    assert added.status_code == 201, added.text
    assert added.json()["name"] == name
    path = "/api/sources/" + quote(name, safe="")  # a slash as %2F: dot segments are not a path to remove
    paused = client.post(path + "/pause", headers=ADMIN)
    assert paused.status_code == 200 and paused.json()["name"] == name and paused.json()["paused"]
    assert client.post(path + "/test", headers=ADMIN).status_code == 200
    assert client.delete(path, headers=ADMIN).status_code == 204
    assert [e.name for e in services.source_book.entries()] == []
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.sources)).scalar_one() == 1  # its state row


@pytest.mark.parametrize("name", [
    pytest.param("bad\x00name", id="nul"),
    pytest.param("line\r\nbreak", id="crlf"),
    pytest.param("rtl\u202eexe.txt", id="bidi-override"),
    pytest.param("x" * 201, id="too-long"),
    pytest.param("", id="empty"),
])
def test_hostile_names_that_break_the_rule_are_refused(api, name: str) -> None:  # type: ignore[no-untyped-def]
    client, services = api
    answer = client.post("/api/sources", json={"name": name, "kind": "feed", "category": "politics",
                                               "url": "https://news.example.org/rss"}, headers=ADMIN)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("name: ")
    assert nothing_stored(services)


def test_a_huge_definition_is_refused_before_it_is_read(api) -> None:  # type: ignore[no-untyped-def]
    client, services = api
    answer = client.post("/api/sources", json={"name": "big", "kind": "feed", "category": "politics",
                                               "url": "https://news.example.org/rss",
                                               "category_map": {f"k{i}": "politics" for i in range(100_000)}},
                         headers=ADMIN)
    assert answer.status_code in (413, 422)
    assert nothing_stored(services)

"""`GET /metrics`: the Prometheus text format, behind the admin token, with figures from both sides."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DATA, NOW, InProcessClient
from tests.test_delivery import make_services
from tests.test_digest import seed

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


def test_metrics(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}", extra='[admin]\ntoken = "admin-token-0123456789"\n')
    seed(services, clock)
    services.send("daily", NOW, everyone=True)
    with InProcessClient(service.create_app(services)) as client:
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers={"Authorization": "Bearer admin-token-0123456789"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert all(line.startswith("# ") or SAMPLE.match(line) for line in lines), [l for l in lines if not SAMPLE.match(l)]
    assert 'gazette_subscribers{status="confirmed"} 3.0' in lines  # prometheus_client writes floats as floats
    assert 'gazette_subscribers{status="pending"} 1.0' in lines
    assert 'gazette_deliveries{edition="daily",status="sent"} 2.0' in lines
    assert 'gazette_articles{category="politics"} 3.0' in lines
    services.close()


# The families /metrics served before it was written with prometheus_client: dashboards and alerts use these.
# name: (help, label names)
FAMILIES = {
    "gazette_articles": ("Articles in the store, by category.", {"category"}),
    "gazette_sources": ("Configured sources by health.", {"status"}),
    "gazette_source_consecutive_failures": ("Failed polls in a row, per source.", {"source"}),
    "gazette_source_skipped_items": ("Articles of each source left out of feeds because they could not be rendered "
                                     "(the feeds themselves stay up).", {"source"}),
    "gazette_source_last_success_timestamp_seconds": ("When each source was last read without error.", {"source"}),
    "gazette_partner_pushes": ("Partner push queue rows by status.", {"status"}),
    "gazette_webhook_deliveries": ("Webhook delivery rows by status.", {"status"}),
    "gazette_scrape_timestamp_seconds": ("When these figures were read.", set()),
    "gazette_subscribers": ("Subscribers by status.", {"status"}),
    "gazette_subscribers_paused": ("Confirmed subscribers who paused their mail.", set()),
    "gazette_deliveries": ("Deliveries of the editions of the last two days, by edition and status.",
                           {"edition", "status"}),
    "gazette_editions_unfinished": ("Editions with deliveries still queued, retrying or held.", set()),
}
SOURCE = f"""
[[sources]]
name = "wire"
kind = "feed"
path = "{DATA / 'sources' / 'atom_basic.atom'}"
category = "economy"
"""


def scrape(services) -> dict[str, Metric]:  # type: ignore[no-untyped-def]
    import service

    with InProcessClient(service.create_app(services)) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def test_every_family_is_still_there_with_exact_timestamps(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = datetime.fromtimestamp(1796000000.5, timezone.utc)  # %g wrote this as 1.796e+09
    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}", extra=SOURCE)
    seed(services, clock)
    services.ingest("wire")
    families = scrape(services)
    assert {name: (f.type, f.documentation) for name, f in families.items()} == \
        {name: ("gauge", text) for name, (text, _) in FAMILIES.items()}
    for name, family in families.items():
        assert all(set(sample.labels) == FAMILIES[name][1] for sample in family.samples), name
    [scraped_at] = families["gazette_scrape_timestamp_seconds"].samples
    assert scraped_at.value == 1796000000.5
    [read_at] = families["gazette_source_last_success_timestamp_seconds"].samples
    assert read_at.labels == {"source": "wire"} and read_at.value == 1796000000.5
    services.close()


def test_each_app_reports_its_own_figures(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    """One registry per app: two apps live in one process (as in tests) neither clash nor report each other."""
    import service

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_services(tmp_path / "a", clock, f"maildir://{tmp_path / 'a' / 'out'}")
    second = make_services(tmp_path / "b", clock, f"maildir://{tmp_path / 'b' / 'out'}")
    seed(first, clock)
    with InProcessClient(service.create_app(first)) as one, InProcessClient(service.create_app(second)) as two:
        for client, expected in ((one, [3, 1]), (two, []), (one, [3, 1])):
            [family] = [f for f in text_string_to_metric_families(client.get("/metrics").text)
                        if f.name == "gazette_subscribers"]
            assert [sample.value for sample in family.samples] == expected
    first.close()
    second.close()

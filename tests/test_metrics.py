"""`GET /metrics`: the Prometheus text format, behind the admin token, with figures from both sides."""

from __future__ import annotations

import re

import httpx

from tests.conftest import NOW, ServerThread
from tests.test_delivery import make_services
from tests.test_digest import seed

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


def test_metrics(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}", extra='[admin]\ntoken = "admin-token-0123456789"\n')
    seed(services, clock)
    services.send("daily", NOW, everyone=True)
    with ServerThread(service.create_app(services)) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        answer = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer admin-token-0123456789"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert all(line.startswith("# ") or SAMPLE.match(line) for line in lines), [l for l in lines if not SAMPLE.match(l)]
    assert 'gazette_subscribers{status="confirmed"} 3' in lines
    assert 'gazette_subscribers{status="pending"} 1' in lines
    assert 'gazette_deliveries{edition="daily",status="sent"} 2' in lines
    assert 'gazette_articles{category="politics"} 3' in lines
    services.close()

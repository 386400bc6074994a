"""A forged X-Forwarded-For: `gazette serve` believes the header only from the proxies of `--forwarded-allow-ips`.

The client address decides per-IP view caps and the forms' rate limits; a client that could name its own address
would get a fresh allowance with every request. A real `serve` over loopback: 127.0.0.9 plays the proxy, 127.0.0.1
(trusted by default, not here) the attacker; the access log shows the address the app saw.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, gazette_command, migrated_sqlite_url, wait_healthy, wait_until, write_config

FORGED = "198.51.100.23"


def seen(log: Path, probe: str) -> str:
    return wait_until(lambda: [line for line in log.read_text(errors="replace").splitlines()
                               if "uvicorn.access" in line and f"probe={probe}" in line], 20)[0]


@pytest.mark.slow
def test_x_forwarded_for_is_believed_from_the_configured_proxy_only(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path))
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port", str(port),
                                                      "--access-log", "--forwarded-allow-ips", "127.0.0.9"],
                                 cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, serve)
        url = f"http://127.0.0.1:{port}/livez"
        for source, probe in (("127.0.0.1", "attacker"), ("127.0.0.9", "proxy")):
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
                answer = client.get(url, params={"probe": probe},
                                    headers={"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https"})
                assert answer.status_code == 200
        attacker = seen(log, "attacker")
        assert "127.0.0.1:" in attacker and FORGED not in attacker
        assert FORGED in seen(log, "proxy")  # the configured proxy is believed: the check above can fail
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=60)

"""`deploy/`, tested as an operator would use it: the nginx site rendered for this machine (ports, paths, a self-signed
certificate), `nginx -t`, then nginx running in front of a real `gazette serve`, with real requests through it (the
static export with gzip_static, the proxied app, who the app believes the client is); the systemd units checked by
`systemd-analyze verify` and their commands and options by `gazette … --help`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from feeds.core import database
from feeds.store import ArticleStore
from newsletter.settings import load_settings
from tests.conftest import (NOW, ROOT, free_port, gazette_command, migrated_sqlite_url, run_gazette, wait_healthy,
                            wait_until, write_config)
from tests.test_store import make_article

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "gazette.conf"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None)
FORGED = "203.0.113.66"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own issuer, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gazette test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def render_site(text: str, **values: object) -> str:
    """deploy/nginx/gazette.conf with what an operator edits set for this test; each edit must find its line, so a
    change to the file's shape fails here rather than testing something else."""
    edits = [
        (r"listen 80;", f"listen 127.0.0.1:{values['http_port']};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{values['https_port']} ssl http2;"),
        (r"\n\s*listen \[::\]:\d+[^\n]*", ""),  # the test binds loopback only
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{values['serve_port']};"),
        (r"ssl_certificate /[^;]+;", f"ssl_certificate {values['cert']};"),
        (r"ssl_certificate_key /[^;]+;", f"ssl_certificate_key {values['key']};"),
        (r"root /var/lib/gazette/site;", f"root {values['export']};"),
        (r"root /var/www/letsencrypt;", f"root {values['export']};"),
    ]
    for pattern, replacement in edits:
        text, found = re.subn(pattern, replacement, text)
        assert found, f"deploy/nginx/gazette.conf has no line matching {pattern!r}"
    return text


def nginx_main_conf(folder: Path, site: Path) -> Path:
    """A main nginx.conf of the test's own (pid, logs, temp paths in `folder`) that includes the site as Debian's does."""
    temp = folder / "nginx-temp"
    temp.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
{'user root;' if os.geteuid() == 0 else ''}
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/nginx-access.log;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""")
    return conf


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict]:
    """`gazette serve` (with its access log, to see who it believes the client is) and nginx in front of it, with the
    static export built; what the tests need to reach and read them."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light); `make test` installs it where it may")
    database_url = migrated_sqlite_url(tmp_path)
    config = write_config(tmp_path / "gazette.toml", database_url=database_url)
    engine = database.make_engine(database_url)
    store = ArticleStore(engine)
    store.sync_config(load_settings(config, {}).categories, (), (), NOW)
    store.upsert_articles([make_article(n, category=("politics", "economy")[n % 2]) for n in range(1, 7)],
                          source_id=None, now=NOW)
    engine.dispose()
    export = tmp_path / "site"
    run_gazette(["--config", str(config), "feeds", "build", "--out", str(export)], cwd=tmp_path, expect=0)
    cert, key = self_signed(tmp_path)
    ports = {"serve_port": free_port(), "https_port": free_port(), "http_port": free_port()}
    site = tmp_path / "gazette-site.conf"
    site.write_text(render_site(SITE.read_text(), cert=cert, key=key, export=export, **ports))
    conf = nginx_main_conf(tmp_path, site)
    nginx = [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"), "-c", str(conf)]
    with ExitStack() as stack:
        with open(tmp_path / "serve.log", "wb") as log:
            serve = subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port",
                                                          str(ports["serve_port"]), "--access-log"],
                                     cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_end, serve)
        checked = subprocess.run(nginx + ["-t"], capture_output=True, text=True, timeout=60)
        with open(tmp_path / "nginx.out", "wb") as out:
            proxy = subprocess.Popen(nginx, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_end, proxy)
        wait_healthy(ports["serve_port"], serve)
        context = ssl.create_default_context(cafile=str(cert))
        yield {"checked": checked, "nginx": proxy, "serve_port": ports["serve_port"], "export": export,
               "https": f"https://127.0.0.1:{ports['https_port']}", "http": f"http://127.0.0.1:{ports['http_port']}",
               "serve": f"http://127.0.0.1:{ports['serve_port']}", "tls": context, "serve_log": tmp_path / "serve.log"}


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def client(verify: ssl.SSLContext | bool = True, local_address: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from `local_address` (any 127.x address is this machine's loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(verify=verify, local_address=local_address), timeout=30)


def raw_get(http: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """A GET and its body as sent (gzip left undone)."""
    with http.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def served_lines(log: Path, marker: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if "uvicorn.access" in line and marker in line]


def test_nginx_site_checks_and_serves_the_export_and_the_app(deployment: dict) -> None:
    checked = deployment["checked"]
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr
    https, serve, log = deployment["https"], deployment["serve"], deployment["serve_log"]
    with client(deployment["tls"]) as tls, client() as direct:
        def nginx_answers() -> bool:
            assert deployment["nginx"].poll() is None, (deployment["serve_log"].parent / "nginx.out").read_text()
            try:
                return tls.get(f"{https}/livez").status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(nginx_answers, 30, interval=0.1, message="nginx did not answer over TLS")

        # The export, served by nginx itself: gzip_static's .gz twin for a client that asks, the plain file otherwise.
        paths = ("/feeds/all.rss", "/feeds/politics.json", "/feeds/economy.atom", "/sitemap-news.xml")
        answers = {}
        for path in paths:
            answers[path] = (raw_get(tls, https + path, **{"Accept-Encoding": "gzip"}),
                             raw_get(tls, https + path, **{"Accept-Encoding": "identity"}))
            (zipped, zipped_body), (plain, plain_body) = answers[path]
            assert zipped.status_code == plain.status_code == 200
            assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
            export = deployment["export"] / path.lstrip("/")
            assert zipped_body == export.with_name(export.name + ".gz").read_bytes()
            assert plain_body == export.read_bytes()
            assert "Accept-Encoding" in zipped.headers["vary"]
            assert "max-age=63072000" in plain.headers["strict-transport-security"]
        # None of them reached the app: its log has the request made after them, and not them.
        assert tls.get(f"{https}/livez?probe=after-static").status_code == 200
        wait_until(lambda: served_lines(log, "probe=after-static"), 10)
        assert [line for path in paths for line in served_lines(log, f"GET {path} ")] == []
        # The same bytes and headers as serve sends for the same paths.
        for path, ((zipped, zipped_body), (plain, plain_body)) in answers.items():
            own, own_zipped = raw_get(direct, serve + path, **{"Accept-Encoding": "gzip"})
            assert own_zipped == zipped_body and direct.get(serve + path).content == plain_body
            for header in ("content-type", "cache-control", "x-content-type-options"):
                assert zipped.headers[header] == plain.headers[header] == own.headers[header], (path, header)

        # A feed missing from the export (a category added since the last build) is the app's.
        (deployment["export"] / "feeds" / "economy.rss").unlink()
        missing = tls.get(f"{https}/feeds/economy.rss")
        assert missing.status_code == 200 and missing.content == direct.get(f"{serve}/feeds/economy.rss").content
        wait_until(lambda: served_lines(log, "GET /feeds/economy.rss "), 10)

        # Everything else is proxied: a page, with X-Forwarded-Proto making its cookie Secure.
        page = tls.get(f"{https}/subscribe")
        assert page.status_code == 200 and "한빛일보" in page.text
        assert "secure" in page.headers["set-cookie"].lower()
        assert "secure" not in direct.get(f"{serve}/subscribe").headers["set-cookie"].lower()
        assert "max-age=63072000" in page.headers["strict-transport-security"]
        redirect = direct.get(f"{deployment['http']}/feeds/all.rss")
        assert redirect.status_code == 301 and redirect.headers["location"].startswith("https://")


def test_the_app_believes_x_forwarded_for_from_nginx_only(deployment: dict) -> None:
    https, serve, log = deployment["https"], deployment["serve"], deployment["serve_log"]
    with client(deployment["tls"], local_address="127.0.0.3") as visitor:
        wait_until(lambda: visitor.get(f"{https}/livez").status_code == 200, 30, interval=0.1)
        # Through nginx, from 127.0.0.3, with a forged header: the app sees 127.0.0.3 (nginx replaced the header).
        assert visitor.get(f"{https}/livez?probe=via-nginx", headers={"X-Forwarded-For": FORGED}).status_code == 200
    line = wait_until(lambda: served_lines(log, "probe=via-nginx"), 10)[0]
    assert "127.0.0.3:" in line and FORGED not in line

    # Straight to serve from 127.0.0.2, which is no trusted proxy: the header is ignored.
    with client(local_address="127.0.0.2") as forger:
        assert forger.get(f"{serve}/livez?probe=forged", headers={"X-Forwarded-For": FORGED}).status_code == 200
    line = wait_until(lambda: served_lines(log, "probe=forged"), 10)[0]
    assert "127.0.0.2:" in line and FORGED not in line
    # From 127.0.0.1, a trusted proxy by default, the same header is believed: the check above can fail.
    with client() as local_proxy:
        assert local_proxy.get(f"{serve}/livez?probe=trusted", headers={"X-Forwarded-For": FORGED}).status_code == 200
    assert FORGED in wait_until(lambda: served_lines(log, "probe=trusted"), 10)[0]


def test_feeds_build_rewrites_only_the_files_whose_bytes_changed(tmp_path: Path) -> None:
    """nginx's Last-Modified and ETag come from the export's files: they must move when the bytes do, and only then."""
    database_url = migrated_sqlite_url(tmp_path)
    config = write_config(tmp_path / "gazette.toml", database_url=database_url)
    engine = database.make_engine(database_url)
    store = ArticleStore(engine)
    store.sync_config(load_settings(config, {}).categories, (), (), NOW)
    store.upsert_articles([make_article(1, category="economy")], source_id=None, now=NOW)
    build = ["--config", str(config), "feeds", "build", "--out", str(tmp_path / "site")]
    run_gazette(build, cwd=tmp_path, expect=0)
    feeds = tmp_path / "site" / "feeds"
    before = {path.name: path.stat().st_mtime_ns for path in feeds.iterdir()}
    for path in feeds.iterdir():  # an older time, so that a rewrite shows even within the file system's granularity
        os.utime(path, ns=(before[path.name] - 10**9, before[path.name] - 10**9))
    before = {path.name: path.stat().st_mtime_ns for path in feeds.iterdir()}
    store.upsert_articles([make_article(2, category="politics")], source_id=None, now=NOW)
    engine.dispose()
    run_gazette(build, cwd=tmp_path, expect=0)
    changed = {path.name for path in feeds.iterdir() if path.stat().st_mtime_ns != before[path.name]}
    assert {"all.rss", "all.rss.gz", "politics.json", "politics.json.gz"} <= changed
    assert not {name for name in changed if name.startswith("economy.")}


# --- systemd units ------------------------------------------------------------------------------------------

def exec_start(unit: Path) -> list[str]:
    lines = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit.name}: one ExecStart expected"
    return shlex.split(lines[0])


def test_the_units_and_their_timer_are_there() -> None:
    names = {p.name for p in (DEPLOY / "systemd").iterdir()}
    assert {"gazette-serve.service", "gazette-worker.service", "gazette-scheduler.service",
            "gazette-feeds-export.service", "gazette-feeds-export.timer"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_runs_a_real_command_with_real_options(unit: Path, tmp_path: Path) -> None:
    command = exec_start(unit)
    assert command[0] == "/opt/gazette/.venv/bin/gazette"
    words = [w for w in command[1:] if not w.startswith("-")]
    import service

    group, path = service.main, []
    for word in words:
        found = group.commands.get(word) if hasattr(group, "commands") else None
        if found is None:
            break
        group, path = found, path + [word]
    assert path, f"{unit.name} runs `gazette {words[0]}`, which is not a command"
    help_text = run_gazette([*path, "--help"], cwd=tmp_path, expect=0).stdout
    for option in (w.split("=")[0] for w in command[1:] if w.startswith("--")):
        assert option in help_text, f"{unit.name}: `gazette {' '.join(path)}` has no {option}"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units' commands are checked against --help above")
    script = shutil.which("gazette", path=str(Path(gazette_command()[0]).parent)) or gazette_command()[0]
    copies = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        copy = tmp_path / unit.name  # verify insists the ExecStart program exists: this checkout's instead of /opt's
        copy.write_text(unit.read_text().replace("/opt/gazette/.venv/bin/gazette", script))
        copies.append(str(copy))
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=120)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "gazette" in line]
    assert done.returncode == 0 and ours == [], done.stdout + done.stderr

"""Serving benchmark: Gazette's own feed responses against nginx serving `gazette feeds build` output.

    .venv/bin/python bench/serve.py [--duration 10] [--connections 50] [--items 50] [--server uvicorn|granian|both]

Reports, in one run:
  (a) requests/s for the 50-item full-content Korean feed `/feeds/all.rss` from Gazette (`gazette serve`, that
      is uvicorn; or the same app under granian) and from nginx serving the files `gazette feeds build` wrote
      (the same bytes), loaded by wrk (each case on each server back to back, `--rounds` times, the best
      kept): plain 200s, 304s (If-None-Match with the ETag that server
      gave), and gzip (Accept-Encoding: gzip; nginx with gzip_static). Goals: Gazette >= 60 % of nginx for 200,
      >= 35 % for 304, >= 40 % for gzip;
  (b) with 30 categories: the time from one new article in the source file to every affected feed (all,
      its category, in RSS, Atom and JSON) answering with it: `gazette ingest` as a command, then
      GETs of those feeds from a running `gazette serve`; and, for a static deployment, `gazette feeds build`.
`--ceiling` adds a bare ASGI app (no framework, no logging, the built bytes) on the same server(s): what one
Python process can do at most. `--profile` adds py-spy samples of the Gazette process during extra 200 and
304 runs (`pip install py-spy`).
granian is not a dependency: `.venv/bin/pip install granian` to measure it. Nothing leaves 127.0.0.1; every
process started here is stopped on exit, error or Ctrl-C.

granian loads `serve:granian_app` from this folder, a factory that builds the app as `gazette serve` does.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
FEED = "/feeds/all.rss"
GOALS = {"200": 0.60, "304": 0.35, "gzip": 0.40}
CASES = {  # name -> (request headers, expected status, expected Content-Encoding)
    "200": ({}, 200, None),
    "304": ({"If-None-Match": None}, 304, None),  # None: the ETag this server sent
    "gzip": ({"Accept-Encoding": "gzip"}, 200, "gzip"),
}
CATEGORIES_30 = [
    ("politics", "정치"), ("economy", "경제"), ("society", "사회"), ("culture", "문화"), ("world", "국제"),
    ("sports", "스포츠"), ("entertainment", "연예"), ("it", "IT"), ("science", "과학"), ("health", "건강"),
    ("education", "교육"), ("environment", "환경"), ("realestate", "부동산"), ("finance", "금융"),
    ("industry", "산업"), ("labor", "노동"), ("gender", "젠더"), ("life", "생활"), ("travel", "여행"),
    ("food", "음식"), ("books", "책"), ("stage", "공연"), ("film", "영화"), ("music", "음악"), ("art", "미술"),
    ("religion", "종교"), ("local", "지역"), ("opinion", "오피니언"), ("editorial", "사설"), ("people", "인물"),
]


def granian_app():  # type: ignore[no-untyped-def]
    """ASGI app factory for granian (`serve:granian_app --factory`): built as service.py's `serve` builds it,
    from the configuration in $GAZETTE_CONFIG."""
    import logging

    import service
    from newsletter.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    services = service.Components(load_settings(Path(os.environ["GAZETTE_CONFIG"])))
    services.prepare_database(migrate=services.settings.database_url.startswith("sqlite:"))
    return service.create_app(services, services.scheduler_runner())


def bare_app():  # type: ignore[no-untyped-def]
    """ASGI app factory for `--ceiling`: no framework, no logging, no database. It answers /feeds/<name> from
    the files `gazette feeds build` wrote under $BENCH_SITE with Gazette's headers, 304 and gzip, so that its
    figures are what the ASGI server alone allows one process."""
    import hashlib
    from email.utils import formatdate

    feeds_dir = Path(os.environ["BENCH_SITE"]) / "feeds"
    types = {"rss": b"application/rss+xml; charset=utf-8", "atom": b"application/atom+xml; charset=utf-8",
             "json": b"application/feed+json; charset=utf-8"}
    files = {}
    for path in feeds_dir.glob("*.*"):
        if path.suffix.lstrip(".") in types:
            body = path.read_bytes()
            gz = path.with_name(path.name + ".gz").read_bytes()
            common = [(b"etag", ('"' + hashlib.sha256(body).hexdigest()[:32] + '"').encode()),
                      (b"last-modified", formatdate(path.stat().st_mtime, usegmt=True).encode()),
                      (b"cache-control", b"public, max-age=300"), (b"vary", b"Accept-Encoding"),
                      (b"content-type", types[path.suffix.lstrip(".")])]
            files[f"/feeds/{path.name}"] = (body, gz, common)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        found = files.get(scope["path"])
        if found is None:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body, gz, common = found
        request = dict(scope["headers"])
        if request.get(b"if-none-match") == common[0][1]:
            await send({"type": "http.response.start", "status": 304, "headers": common[:4]})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = list(common)
        if b"gzip" in request.get(b"accept-encoding", b""):
            body = gz
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


# --- inputs ---------------------------------------------------------------------------------------------

def korean_paragraphs() -> list[str]:
    data = json.loads((ROOT / "examples" / "demo" / "articles.json").read_text(encoding="utf-8"))
    return [p for a in data["articles"] for p in a["paragraphs"]]


def rss_item(key: str, label: str, published: datetime, paragraphs: list[str], body_chars: int,
             title: str | None = None) -> str:
    """One full-content item, as bench/ingest.py's make_feed writes them, with its own upstream category."""
    rng = random.Random(key)
    body, size = [], 0
    while size < body_chars:
        p = rng.choice(paragraphs)
        body.append(f"<p>{escape(p)}</p>")
        size += len(p)
    title = title or f"{rng.choice(paragraphs)[:40]} {key}"
    return f"""<item><title>{escape(title)}</title>
<link>https://news.example.com/news/{key}</link><guid isPermaLink="false">bench-{key}</guid>
<description>{escape(body[0][3:-4][:150])}</description>
<content:encoded><![CDATA[{''.join(body)}]]></content:encoded><category>{escape(label)}</category>
<dc:creator>기자{len(key) % 7} 기자</dc:creator><pubDate>{format_datetime(published)}</pubDate></item>"""


def rss(items: list[str]) -> bytes:
    return (f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>wire</title><link>https://news.example.com/</link><description>bench</description>
{''.join(items)}</channel></rss>""").encode("utf-8")


def write_config(folder: Path, categories: list[tuple[str, str]]) -> Path:
    """examples/demo.toml's shape: site, database, mail, secrets, categories, one `feed` source from a file."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = ["[site]", 'name = "한빛일보"', 'base_url = "https://news.example.com"', 'timezone = "Asia/Seoul"',
             'language = "ko"', "", "[database]", f"url = {q('sqlite:///' + str(folder / 'gazette.db'))}", "",
             "[mail]", f"url = {q('maildir://' + str(folder / 'outbox'))}",
             'from = "한빛일보 뉴스레터 <newsletter@hanbit-ilbo.example>"', 'postal_address = "한빛시 중앙로 123"', "",
             "[secrets]", 'signing_key = "bench-signing-key-0123456789"', ""]
    for slug, name in categories:
        lines += ["[[categories]]", f"slug = {q(slug)}", f"name = {q(name)}", ""]
    mapping = ", ".join(f"{q(name)} = {q(slug)}" for slug, name in categories)
    # interval 24h: the scheduler inside `serve` polls once at start-up and not again during the run.
    lines += ["[[sources]]", 'name = "wire"', 'kind = "feed"', f"path = {q(str(folder / 'wire.rss'))}",
              'interval = "24h"', f"category_map = {{ {mapping} }}", ""]
    path = folder / "gazette.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- processes ------------------------------------------------------------------------------------------

class Processes:
    """Children in their own process groups, stopped (group and all) by `stop` or `stop_all`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True, cwd=self.folder)
        self.running[name] = process
        return process

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.folder / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)  # the child leads its own group: its workers go too
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=wait)
                # the leader is gone; make sure no worker of its group outlives it
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def run(command: list[str], timeout: float = 300) -> tuple[float, str]:
    """Run a command to completion; its wall time and output. Fails loudly with the output."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str], timeout: float = 10) -> tuple[int, dict[str, str], bytes, int]:
    """One GET sending exactly these headers and Host (as wrk does): status, headers, body, bytes on the wire."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        head = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + 2 + sum(
            len(k) + len(v) + 4 for k, v in response.getheaders())
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, head + len(body)
    finally:
        conn.close()


def wait_ready(port: int, process: subprocess.Popen[bytes], name: str, processes: Processes,
               path: str = FEED, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}):\n{processes.log_tail(name)}")
        try:
            if get(port, path, {}, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer {path} within {seconds:.0f} s:\n{processes.log_tail(name)}")


def wait_logged(processes: Processes, name: str, text: str, count: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while processes.log_tail(name, 10_000).count(text) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: {text!r} not logged {count} times within {seconds:.0f} s")
        time.sleep(0.2)


def group_libraries(pid: int) -> set[str]:
    """Shared objects mapped by the process group led by pid (Linux): which loop / HTTP parser really runs."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pid:
                continue
            maps = (proc / "maps").read_text()
        except (OSError, ProcessLookupError):
            continue
        for lib in ("uvloop", "httptools", "rloop", "granian"):
            if f"/{lib}/" in maps:
                found.add(lib)
    return found


# --- nginx and the Gazette servers ----------------------------------------------------------------------

def nginx_conf(folder: Path, site: Path, port: int, workers: str = "auto") -> Path:
    temp = folder / "nginx-temp"
    temp.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(f"""# written by bench/serve.py
daemon off;
worker_processes {workers};
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;  # as uvicorn and granian: a keep-alive connection is never closed for its count
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {site};
        etag on;
        gzip_static on;
        gzip_vary on;
        location / {{ }}
    }}
}}
""")
    return conf


def gazette_command() -> list[str]:
    script = shutil.which("gazette", path=str(VENV_BIN))
    return [script] if script else [sys.executable, "-m", "service"]


def serve_supports_workers() -> bool:
    _, out = run(gazette_command() + ["serve", "--help"])
    return "--workers" in out


def start_server(kind: str, config: Path, site: Path, port: int, workers: int,
                 processes: Processes, name: str | None = None) -> subprocess.Popen[bytes]:
    """`uvicorn`: `gazette serve` (`--workers` when more than one); `granian`: the same app under granian; `*-bare`:
    `bare_app` on that server. `name`: the process's name in `processes` (default `kind`)."""
    if kind == "uvicorn-bare":
        command = [str(VENV_BIN / "uvicorn"), "--factory", "serve:bare_app", "--app-dir", str(BENCH), "--host",
                   "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
        return processes.start(kind, command, env={**os.environ, "BENCH_SITE": str(site)})
    if kind == "granian-bare":
        command = [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers), "--factory", "--working-dir", str(BENCH), "serve:bare_app"]
        return processes.start(kind, command, env={**os.environ, "BENCH_SITE": str(site)})
    if kind == "uvicorn":
        command = gazette_command() + ["--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            command += ["--workers", str(workers)]
        return processes.start(name or kind, command)
    command = [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--factory", "--working-dir", str(BENCH), "serve:granian_app"]
    return processes.start(kind, command, env={**os.environ, "GAZETTE_CONFIG": str(config)})


# --- wrk --------------------------------------------------------------------------------------------------

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[int, str, float]]:
    """pid -> (process group, name, CPU seconds so far), from /proc."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if proc.name == "2" or fields[1] == "2":
            continue  # kernel threads (ksoftirqd, kworker) also do our loopback traffic and log writeback
        out[int(proc.name)] = (int(fields[2]), name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def foreign_cpu(before: dict[int, tuple[int, str, float]], ours: set[int]) -> tuple[float, str]:
    """CPU seconds used since `before` by user processes outside our process groups (wrk and the servers are
    ours), and the busiest of them. Processes that started and ended in between are not seen."""
    used: Counter[str] = Counter()
    for pid, (group, name, cpu) in cpu_by_process().items():
        if group in ours:
            continue
        delta = cpu - before[pid][2] if pid in before and before[pid][1] == name else cpu
        if delta > 0:
            used[name] += delta
    return sum(used.values()), ", ".join(f"{name} {s:.1f} s" for name, s in used.most_common(3))


def wrk(port: int, headers: dict[str, str], seconds: float, args: argparse.Namespace, folder: Path) -> dict:
    script = folder / "request.lua"
    # wrk.headers set once in the script: wrk builds one request and sends it on every connection.
    script.write_text("".join(f'wrk.headers["{k}"] = [==[{v}]==]\n' for k, v in headers.items()))
    command = ["wrk", "--threads", str(args.threads), "--connections", str(args.connections),
               "--duration", f"{seconds:g}s", "--timeout", "5s", "--latency", "--script", str(script),
               f"http://127.0.0.1:{port}{FEED}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{out}{done.stderr}")
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)([KMGT]?)B read", out)
    assert total, out
    requests = int(total.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    percentiles = re.findall(r"^\s+(50|99)(?:\.\d+)?%\s+([\d.]+)(us|ms|s|m)$", out, re.MULTILINE)
    latency = {p: float(v) * _TIME[u] for p, v, u in percentiles}
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": requests,
            "bytes_per_request": float(total.group(4)) * _UNITS[total.group(5)] / max(requests, 1),
            "non_2xx_3xx": int(non_ok.group(1)) if non_ok else 0,
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "p50": latency.get("50"), "p99": latency.get("99"), "output": out}


def case_headers(case: str, etag: str | None) -> dict[str, str]:
    return {k: (v if v is not None else etag or "") for k, v in CASES[case][0].items()}


def check(name: str, port: int, case: str, etag: str | None) -> int:
    """One request with the case's headers must get the case's status and encoding; its size on the wire."""
    _, want_status, want_encoding = CASES[case]
    status, got, _, wire = get(port, FEED, case_headers(case, etag))
    problems = []
    if status != want_status:
        problems.append(f"status {status}, expected {want_status}")
    if got.get("content-encoding") != want_encoding:
        problems.append(f"Content-Encoding {got.get('content-encoding')}, expected {want_encoding}")
    if problems:
        raise SystemExit(f"{name} {case}: the checked request got " + "; ".join(problems))
    return wire


def group_cpu(snapshot: dict[int, tuple[int, str, float]], group: int) -> float:
    return sum(cpu for _, (pgid, _, cpu) in snapshot.items() if pgid == group)


def measure(name: str, port: int, case: str, etag: str | None, wire: int, ours: set[int],
            args: argparse.Namespace, folder: Path, group: int) -> dict:
    """Warm up, then one wrk run; its figures (with the CPU time the server's process group `group` used per
    response: what a core of it can answer, whoever else shares the machine) and what was wrong with it."""
    headers = case_headers(case, etag)
    if args.warmup:
        wrk(port, headers, args.warmup, args, folder)
    before = cpu_by_process()
    result = wrk(port, headers, args.duration, args, folder)
    after = cpu_by_process()
    foreign, busiest = foreign_cpu(before, ours)
    result["cpu_us"] = (group_cpu(after, group) - group_cpu(before, group)) / max(result["requests"], 1) * 1e6
    problems = []
    if result["non_2xx_3xx"]:
        problems.append(f"{result['non_2xx_3xx']} non-2xx/3xx responses")
    if result["socket_errors"]:
        problems.append(f"socket errors ({result['output'].split('Socket errors:')[1].splitlines()[0].strip()})")
    # Every response must have been the checked one: the bytes wrk read per request match its size.
    if not 0.9 <= result["bytes_per_request"] / wire <= 1.1:
        problems.append(f"{result['bytes_per_request']:.0f} bytes read per request, the checked response is {wire}")
    share = foreign / (args.duration * (os.cpu_count() or 1))
    result.update(case=case, server=name, wire_bytes=wire, problems=problems, foreign=share)
    print(f"  {name:12} {case:5} {result['rps']:10,.0f} req/s  {result['cpu_us']:6.0f} µs CPU/response  "
          f"p50 {ms(result['p50'])}  p99 {ms(result['p99'])}  "
          f"{wire:,} bytes/response" + (f"  !! {'; '.join(problems)}" if problems else "")
          + (f"  (other processes used {share * 100:.0f} % of the CPUs: {busiest})" if share >= 0.02 else ""),
          flush=True)
    return result


def ms(seconds: float | None) -> str:
    return f"{seconds * 1000:7.1f} ms" if seconds is not None else "      ? ms"


LAYERS = [  # (layer, path fragments of a frame's file), first match wins; a sample goes to its innermost frame
    ("Gazette (feeds/)", ("(feeds/", "(newsletter/")),
    ("database (SQLAlchemy, sqlite3)", ("(sqlalchemy/", "(sqlite3/")),
    ("logging (uvicorn's access log)", ("(logging/",)),
    ("email.utils, datetime (Last-Modified)", ("(email/",)),
    ("FastAPI / Starlette", ("(fastapi/", "(starlette/", "(anyio/")),
    ("uvicorn (incl. writes to the socket)", ("(uvicorn/",)),
    ("granian (Python side)", ("(granian/",)),
    ("asyncio / event loop", ("(asyncio/", "(uvloop/")),
]


def profile(pid: int, port: int, case: str, etag: str | None, args: argparse.Namespace, folder: Path,
            label: str) -> None:
    """py-spy samples the server's process group during an extra run of one case; prints where the time goes."""
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        print("  --profile: py-spy is not installed (.venv/bin/pip install py-spy); skipped")
        return
    out = folder / f"profile-{label}-{case}.txt"
    seconds = int(max(args.duration, 5))
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--format", "raw",
                                 "--duration", str(seconds), "--output", str(out), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(1)
        wrk(port, case_headers(case, etag), seconds - 2, args, folder)
        _, err = recorder.communicate(timeout=seconds + 30)
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGKILL)
            recorder.wait()
    if not out.exists() or not out.stat().st_size:
        print(f"  py-spy recorded nothing: {err.decode(errors='replace')[-500:]}")
        return
    own, inclusive, total, empty = Counter(), Counter(), 0, 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:  # a thread of the process with no Python frame (granian's Rust runtime)
            empty += int(count)
            continue
        total += int(count)
        layers = [next((name for name, marks in LAYERS if any(m in f for m in marks)), "other") for f in frames]
        own[layers[-1]] += int(count)
        for layer in set(layers):
            inclusive[layer] += int(count)
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        own["  leaf " + leaf] += int(count)
    print(f"  py-spy, {label} {case}: {total} samples with Python frames ({empty} without); "
          f"share of samples by innermost frame [and by any frame]:")
    for layer, _ in LAYERS + [("other", ())]:
        if own[layer] or inclusive[layer]:
            print(f"    {own[layer] / total * 100:5.1f} %  [{inclusive[layer] / total * 100:5.1f} %]  {layer}")
    print("    busiest functions (innermost frame):")
    for leaf, n in [(k, n) for k, n in own.most_common() if k.startswith("  leaf ")][:8]:
        print(f"    {n / total * 100:5.1f} %  {leaf[7:]}")
    print(f"    raw stacks: {out}")


# --- the two measurements ---------------------------------------------------------------------------------

def serving(args: argparse.Namespace, folder: Path, processes: Processes, paragraphs: list[str]) -> bool:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    categories = [("politics", "정치"), ("economy", "경제"), ("society", "사회"), ("culture", "문화")]
    items = [rss_item(f"0-{i}", "정치", now - timedelta(minutes=i + 1), paragraphs, args.body) for i in range(args.items)]
    (folder / "wire.rss").write_bytes(rss(items))
    config = write_config(folder, categories)
    gazette = gazette_command() + ["--config", str(config)]
    run(gazette + ["db", "upgrade"])
    _, out = run(gazette + ["ingest"])
    print(f"ingest: {out.strip()}")
    site = folder / "site"
    run(gazette + ["feeds", "build", "--out", str(site)])
    os.chmod(folder, 0o755)  # nginx's workers run as another user when we are root
    built = (site / "feeds" / "all.rss").read_bytes()
    print(f"{FEED}: {built.count(b'<item>')} items, {len(built):,} bytes, "
          f"{len((site / 'feeds' / 'all.rss.gz').read_bytes()):,} gzipped")

    # Every server up at once (the Gazette ones share the database, idle while another is measured), so
    # that each case is measured on each server back to back, round after round.
    servers = ["uvicorn", "granian"] if args.server == "both" else [args.server]
    if args.ceiling:
        servers += [f"{kind}-bare" for kind in servers]
    if args.workers > 1 and "uvicorn" in servers:  # `gazette serve --workers N`, beside the one-process baseline
        servers.insert(servers.index("uvicorn") + 1, f"uvicorn-x{args.workers}")
    ports = {name: free_port() for name in ["nginx"] + servers}
    conf = nginx_conf(folder, site, ports["nginx"], args.nginx_workers)
    started = {"nginx": processes.start("nginx", ["nginx", "-p", str(folder), "-e", str(folder / "nginx-error.log"),
                                                   "-c", str(conf)])}
    for kind in servers:
        multi = kind.startswith("uvicorn-x")
        workers = args.workers if multi or kind != "uvicorn" else 1
        started[kind] = start_server("uvicorn" if multi else kind, config, site, ports[kind], workers, processes,
                                     name=kind)
    for name, process in started.items():
        wait_ready(ports[name], process, name, processes)
        if name.startswith("uvicorn-x"):  # every worker up, not only the first to answer
            wait_logged(processes, name, "Application startup complete", args.workers)
    time.sleep(2)  # the schedulers' start-up poll of the (unchanged) source
    ours = {p.pid for p in started.values()} | {os.getpgid(0)}
    etags, wires, libs = {}, {}, {}
    for name in started:
        _, headers, body, _ = get(ports[name], FEED, {})
        if body != built:
            print(f"  note: {name}'s {FEED} differs from the built file ({len(body):,} vs {len(built):,} bytes)")
        etags[name] = headers.get("etag")
        wires[name] = {case: check(name, ports[name], case, etags[name]) for case in CASES}
        if name != "nginx" and not name.endswith("-bare"):
            libs[name] = group_libraries(started[name].pid)

    print(f"wrk: {args.threads} threads, {args.connections} connections, {args.warmup:g} s warm-up + "
          f"{args.duration:g} s per run, {args.rounds} round(s), best kept")
    runs: list[dict] = []
    for round_ in range(args.rounds):
        print(f" round {round_ + 1}", flush=True)
        for case in CASES:
            for name in started:
                runs.append(measure(name, ports[name], case, etags[name], wires[name][case], ours, args, folder,
                                    started[name].pid))
    if args.profile:
        for kind in [s for s in servers if not s.endswith("-bare")]:
            for case in ("200", "304"):
                profile(started[kind].pid, ports[kind], case, etags[kind], args, folder, kind)
    for name in reversed(list(started)):
        processes.stop(name)

    def best(name: str, case: str) -> dict:
        return max((r for r in runs if r["server"] == name and r["case"] == case and not r["problems"]),
                   key=lambda r: r["rps"], default={"rps": float("nan")})

    print()
    print(machine(libs))
    print("| response | nginx req/s | " + " | ".join(f"{s} req/s | {s} / nginx" for s in servers) + " | goal |")
    print("| --- " * (2 + 2 * len(servers) + 1) + "|")
    for case in CASES:
        base = best("nginx", case)["rps"]
        row = [f"| {case} | {base:,.0f}"]
        for kind in servers:
            ratio = best(kind, case)["rps"] / base
            verdict = "(met)" if ratio >= GOALS[case] else "(not met)"
            row.append(f"{best(kind, case)['rps']:,.0f} | {ratio * 100:.1f} % {verdict}")
        print(" | ".join(row) + f" | >= {GOALS[case] * 100:.0f} % |")
    print(f"nginx: worker_processes {args.nginx_workers}")
    print("server CPU per response, lowest of the valid runs (responses per second one core of it can give):")
    for name in started:
        print(f"  {name}: " + ", ".join(
            f"{case} {cpu:.0f} µs ({1e6 / cpu:,.0f}/s)" for case in CASES
            if (cpu := min((r["cpu_us"] for r in runs if r["server"] == name and r["case"] == case
                            and not r["problems"] and r["cpu_us"] > 0), default=0))))
    for kind in [s for s in servers if s.startswith("uvicorn-x")]:
        print(f"{kind} / uvicorn (one process): " + ", ".join(
            f"{case} {best(kind, case)['rps'] / best('uvicorn', case)['rps']:.2f}x" for case in CASES))
    bad = [r for r in runs if r["problems"]]
    for r in bad:
        print(f"INVALID (left out): {r['server']} {r['case']}: {'; '.join(r['problems'])}")
    disturbed = [r for r in runs if r["foreign"] >= 0.05]
    if disturbed:
        print(f"note: during {len(disturbed)} of {len(runs)} runs other processes used >= 5 % of the CPUs "
              f"(most: {max(r['foreign'] for r in disturbed) * 100:.0f} %); the figures are the best of each")
    return not bad


def rebuild(args: argparse.Namespace, folder: Path, processes: Processes, paragraphs: list[str]) -> None:
    folder.mkdir()
    categories = CATEGORIES_30[: args.categories] if args.categories <= 30 else CATEGORIES_30 + [
        (f"extra{i}", f"분류{i}") for i in range(args.categories - 30)]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = [rss_item(f"1-{i}", categories[i % len(categories)][1], now - timedelta(minutes=i + 1), paragraphs,
                      args.body) for i in range(args.items)]
    (folder / "wire.rss").write_bytes(rss(items))
    config = write_config(folder, categories)
    gazette = gazette_command() + ["--config", str(config)]
    run(gazette + ["db", "upgrade"])
    run(gazette + ["ingest"])
    startup = min(run(gazette_command() + ["--version"])[0] for _ in range(3))
    unchanged = min(run(gazette + ["ingest"])[0] for _ in range(2))  # the same bytes: read, hash, nothing parsed
    port = free_port()
    process = start_server("uvicorn", config, folder, port, 1, processes)
    wait_ready(port, process, "uvicorn", processes)
    time.sleep(1)
    for slug in ["all"] + [slug for slug, _ in categories]:  # each feed served once, as by a server up a while
        for fmt in ("rss", "atom", "json"):
            status = get(port, f"/feeds/{slug}.{fmt}", {})[0]
            if status != 200:
                raise SystemExit(f"/feeds/{slug}.{fmt} answered {status}:\n{processes.log_tail('uvicorn')}")

    trials = []
    for trial in range(args.rebuild_repeat):
        slug, label = categories[(trial * 7 + 3) % len(categories)]
        token = f"bench-new-{trial}-{time.time_ns()}"
        items.insert(0, rss_item(f"new-{trial}", label, datetime.now(timezone.utc).replace(microsecond=0), paragraphs,
                                 args.body, title=f"{paragraphs[trial][:30]} {token}"))
        affected = [f"/feeds/{s}.{fmt}" for s in ("all", slug) for fmt in ("rss", "atom", "json")]
        # A random pause, so that the articles land at different points of the server's own timers.
        time.sleep(random.Random(trial).uniform(0, 3))
        (folder / "wire.rss").write_bytes(rss(items))
        start = time.perf_counter()
        _, out = run(gazette + ["ingest"])
        ingested = time.perf_counter()
        assert "1 new" in out, out
        pending, slowest = set(affected), 0.0
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for path in sorted(pending):
                t = time.perf_counter()
                status, _, body, _ = get(port, path, {})
                slowest = max(slowest, time.perf_counter() - t)
                if status == 200 and token.encode() in body:
                    pending.discard(path)
            if pending:
                time.sleep(0.01)  # polls about every 10 ms (plus the GETs themselves)
        served = time.perf_counter()
        if pending:
            raise SystemExit(f"not updated after 60 s: {', '.join(sorted(pending))}")
        site = folder / f"site-{trial}"
        build_time, _ = run(gazette + ["feeds", "build", "--out", str(site)])
        assert token.encode() in (site / "feeds" / f"{slug}.rss").read_bytes()
        trials.append({"ingest": ingested - start, "feeds": served - ingested, "slowest": slowest,
                       "total": served - start, "build": build_time, "files": sum(1 for f in site.rglob("*") if f.is_file())})
        print(f"  new article in {slug}: ingest {trials[-1]['ingest']:.2f} s, then {len(affected)} feeds served with "
              f"it in {trials[-1]['feeds'] * 1000:.0f} ms (slowest GET {slowest * 1000:.0f} ms); total "
              f"{trials[-1]['total']:.2f} s; `feeds build` {build_time:.2f} s for {trials[-1]['files']} files", flush=True)
    processes.stop("uvicorn")
    print()
    print(f"new article -> affected feeds, {len(categories)} categories, {args.items}-item source, "
          f"{len(trials)} articles (median, min - max):")

    def spread(key: str, scale: float = 1, unit: str = "s", digits: int = 2) -> str:
        values = [t[key] * scale for t in trials]
        return (f"{statistics.median(values):.{digits}f} {unit} "
                f"({min(values):.{digits}f} - {max(values):.{digits}f})")

    print("| step | time |\n| --- | --- |")
    print(f"| `gazette ingest` with the new article (a new process: start-up, read, parse, store) | {spread('ingest')} |")
    print(f"| for comparison: `gazette ingest` of the unchanged file / `gazette --version` | "
          f"{unchanged:.2f} s / {startup:.2f} s |")
    print(f"| after the ingest, until the 6 affected feeds (all and the category, in rss/atom/json) serve it "
          f"| {spread('feeds', 1000, 'ms', 0)} |")
    print(f"| **new article in the file -> every affected feed served with it** | **{spread('total')}** |")
    print(f"| static deployment instead: `gazette feeds build` after the ingest ({trials[0]['files']} files) | "
          f"{spread('build')} |")


def code_state() -> str:
    """The commit measured and whether the working tree differs from it (read-only git)."""
    def git(*command: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", "-C", str(ROOT), *command], capture_output=True,
                                  text=True, timeout=30, check=False).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return f"code: {ROOT} (not a git checkout)"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return f"code: commit {commit}" + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def machine(libs: dict[str, set[str]]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    mem = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr.strip().split("/")[-1]
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split()[1]
    # uvicorn.run's defaults loop="auto", http="auto" pick uvloop and httptools when they can be imported.
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    lines = [f"machine: {cpu}, {os.cpu_count()} cores, {mem} GiB, {platform.system()} {platform.release()}",
             f"python: {platform.python_implementation()} {platform.python_version()}; nginx {nginx}; wrk {wrk_v}",
             (f"uvicorn {version('uvicorn')}: loop auto -> {loop} ({version('uvloop')}), http auto -> {parser} "
              f"({version('httptools')})")]
    for kind, found in libs.items():
        lines.append(f"{kind}: mapped in its processes: {', '.join(sorted(found)) or 'none of uvloop/httptools/rloop'}"
                     + (f"; granian {version('granian')}" if kind == "granian" else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk before each measured run (0: none)")
    parser.add_argument("--rounds", type=int, default=2, help="each case on each server this many times; best kept")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--items", type=int, default=50, help="items in the source (and the feed)")
    parser.add_argument("--body", type=int, default=3000, help="characters of Korean body text per item")
    parser.add_argument("--server", choices=["uvicorn", "granian", "both"], default="uvicorn",
                        help="how Gazette is served: `gazette serve` (uvicorn) or granian with the same app")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes; with uvicorn, `gazette serve --workers N` is measured beside one process")
    parser.add_argument("--nginx-workers", default="auto", help="nginx's worker_processes (auto: one per core)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure a bare ASGI app (no framework, no logging) on the same server(s)")
    parser.add_argument("--categories", type=int, default=30, help="categories for the rebuild measurement (0: skip it)")
    parser.add_argument("--rebuild-repeat", type=int, default=5, help="new articles, one at a time")
    parser.add_argument("--profile", action="store_true", help="py-spy the Gazette process during an extra 200 and 304 run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, configs, profiles)")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (Debian: apt-get install -y nginx wrk)")
    if args.server in ("granian", "both") and not (VENV_BIN / "granian").exists():
        parser.error("granian is not installed in this virtualenv: .venv/bin/pip install granian")
    if args.workers > 1 and args.server in ("uvicorn", "both") and not serve_supports_workers():
        parser.error("`gazette serve` has no --workers option; --workers > 1 only with --server granian")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below on SIGTERM too
    paragraphs = korean_paragraphs()
    folder = Path(tempfile.mkdtemp(prefix="gazette-serve-bench-"))
    processes = Processes(folder)
    ok = True
    try:
        print(code_state(), flush=True)
        print(f"serving {FEED}: {args.items} items x ~{args.body} chars of Korean text; nginx vs "
              f"{'uvicorn and granian' if args.server == 'both' else args.server}", flush=True)
        ok = serving(args, folder, processes, paragraphs)
        if args.categories:
            print(f"\nnew article -> feeds, {args.categories} categories", flush=True)
            rebuild(args, folder / "rebuild", processes, paragraphs)
    finally:
        processes.stop_all()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

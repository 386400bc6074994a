"""Ingest benchmark: 100 feeds x 50 full-content Korean items from a loopback HTTP server into SQLite.

    .venv/bin/python bench/ingest.py [--feeds 100] [--items 50] [--body 3000] [--repeat 3]

Reports, in one run:
  (a) items/s end to end (HTTP fetch, parse, sanitise, normalise, store) for feeds whose items are new, and
      for feeds whose every item changed, against bare `feedparser.parse()` of the same bytes with default
      options (the baseline; goal >= 1.5x);
  (b) the cost of an unchanged feed, answered 304 or 200 with identical bytes, as a share of a changed
      one (goal <= 5 %).
Each figure is the best of --repeat runs. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from concurrent.futures import ProcessPoolExecutor
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402

from feeds import db
from feeds.core import database  # noqa: E402
from feeds.fetch import HostLimiter, HttpFetcher  # noqa: E402
from feeds.ingest import IngestPolicy, Reading, ingest_all, parse_body  # noqa: E402
from feeds.settings import build_settings  # noqa: E402
from feeds.store import ArticleStore  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def korean_paragraphs() -> list[str]:
    data = json.loads((ROOT / "examples" / "demo" / "articles.json").read_text(encoding="utf-8"))
    return [p for a in data["articles"] for p in a["paragraphs"]]


def make_feed(n: int, items: int, body_chars: int, paragraphs: list[str], revision: int) -> bytes:
    rng = random.Random(n * 1000 + revision)
    entries = []
    for i in range(items):
        body, size = [], 0
        while size < body_chars:
            p = rng.choice(paragraphs)
            body.append(f"<p>{escape(p)}</p>")
            size += len(p)
        published = NOW - timedelta(minutes=n * items + i)
        entries.append(f"""<item><title>{escape(rng.choice(paragraphs)[:40])} {n}-{i}</title>
<link>https://news.example.com/news/{n}/{i}</link><guid isPermaLink="false">bench-{n}-{i}</guid>
<description>{escape(body[0][3:-4][:150])}</description>
<content:encoded><![CDATA[{''.join(body)}]]></content:encoded><category>정치</category>
<dc:creator>기자{i % 7} 기자</dc:creator><pubDate>{format_datetime(published)}</pubDate></item>""")
    return (f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>feed {n}</title><link>https://news.example.com/</link><description>bench</description>
{''.join(entries)}</channel></rss>""").encode("utf-8")


def serve_folder(folder: str, honour_etag: "multiprocessing.sharedctypes.Synchronized[bool]", port: "multiprocessing.sharedctypes.Synchronized[int]") -> None:
    """The upstream feeds, served from files by another process (as a real upstream is another machine),
    over HTTP/1.1 keep-alive, with a strong ETag; `honour_etag` off answers 200 with the same bytes instead."""
    cache: dict[str, tuple[float, bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            path = Path(folder) / self.path.lstrip("/").replace("/", "_")
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                self.send_error(404)
                return
            if self.path not in cache or cache[self.path][0] != mtime:
                body = path.read_bytes()
                cache[self.path] = (mtime, body, '"' + hashlib.md5(body).hexdigest() + '"')
            _, body, etag = cache[self.path]
            if honour_etag.value and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port.value = server.server_address[1]
    server.serve_forever()


def run_once(args: argparse.Namespace, paragraphs: list[str]) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    honour_etag, port = context.Value("b", True), context.Value("i", 0)
    total_items = args.feeds * args.items
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "upstream"
        folder.mkdir()
        bodies = {n: make_feed(n, args.items, args.body, paragraphs, revision=0) for n in range(args.feeds)}
        for n, body in bodies.items():
            (folder / f"feed_{n}.xml").write_bytes(body)
        server = context.Process(target=serve_folder, args=(str(folder), honour_etag, port), daemon=True)
        server.start()
        while not port.value:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port.value}"

        start = time.perf_counter()
        for body in bodies.values():
            parsed = feedparser.parse(body)
            assert len(parsed.entries) == args.items
        baseline = time.perf_counter() - start

        settings = build_settings({
            "secrets": {"signing_key": "bench-signing-key-0123456789"},
            "database": {"url": f"sqlite:///{tmp}/bench.db"},
            # The server is ours, on loopback: no politeness delay between requests to it.
            "fetch": {"host_delay": 0, "host_concurrency": args.workers, "workers": args.workers,
                      "parse_processes": args.processes},
            "categories": [{"slug": "politics", "name": "정치"}],
            # The upstream is on loopback: a source on a private address must say so (the outbound policy).
            "sources": [{"name": f"feed-{n}", "kind": "feed", "url": f"{base}/feed/{n}.xml", "category": "politics",
                         "category_map": {"정치": "politics"}, "allow_private_network": True} for n in range(args.feeds)],
        })
        engine = database.make_engine(settings.database_url)
        db.migrate(engine, [db.MIGRATIONS])  # the content side alone is all an ingest needs
        store = ArticleStore(engine)
        store.sync_config(settings.categories, settings.sources, settings.partners, NOW)
        fetcher = HttpFetcher(limiter=HostLimiter(settings.fetch.host_concurrency, settings.fetch.host_delay))
        clock = lambda: NOW  # noqa: E731
        pool = (ProcessPoolExecutor(args.processes, mp_context=multiprocessing.get_context("spawn"))
                if args.processes else None)
        policy = IngestPolicy(parse_pool=pool)
        if pool is not None:  # start the processes and their imports before the clock runs
            sample = make_feed(0, 1, 100, paragraphs, revision=0)
            reading = Reading(default_category="politics", category_map={}, timezone=timezone.utc, now=NOW)
            warm = [pool.submit(parse_body, "feed", sample, base, None, reading) for _ in range(args.processes * 2)]
            for future in warm:
                future.result()

        def timed(expect: str) -> float:
            start = time.perf_counter()
            results = ingest_all(settings.sources, store=store, fetcher=fetcher, clock=clock,
                                 workers=settings.fetch.workers, policy=policy)
            elapsed = time.perf_counter() - start
            bad = [r.line() for r in results if r.status != expect]
            assert not bad, bad[:3]
            return elapsed

        new = timed("new")
        not_modified = timed("unchanged")
        honour_etag.value = False
        same_bytes = timed("unchanged")
        for n in range(args.feeds):
            (folder / f"feed_{n}.xml").write_bytes(make_feed(n, args.items, args.body, paragraphs, revision=1))
        changed = timed("updated")
        if pool is not None:
            pool.shutdown()
        fetcher.close()
        engine.dispose()
        server.terminate()
        server.join()
    return {"baseline": baseline, "new": new, "changed": changed, "not_modified": not_modified,
            "same_bytes": same_bytes, "items": total_items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--body", type=int, default=3000, help="characters of Korean body text per item")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="sources fetched at once ([fetch] workers)")
    parser.add_argument("--processes", type=int, default=2, help="parse processes ([fetch] parse_processes)")
    args = parser.parse_args()
    paragraphs = korean_paragraphs()
    runs = [run_once(args, paragraphs) for _ in range(args.repeat)]
    best = {key: min(r[key] for r in runs) for key in runs[0] if key != "items"}
    items = runs[0]["items"]
    rate = {key: items / seconds for key, seconds in best.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {args.feeds} feeds x {args.items} items x ~{args.body} chars, "
          f"{args.workers} workers, {args.processes} parse processes, best of {args.repeat}")
    print(f"baseline feedparser.parse():        {rate['baseline']:8.0f} items/s")
    print(f"gazette ingest, new items:          {rate['new']:8.0f} items/s  ({rate['new'] / rate['baseline']:.2f}x baseline)")
    print(f"gazette ingest, every item changed: {rate['changed']:8.0f} items/s  ({rate['changed'] / rate['baseline']:.2f}x baseline)")
    print(f"unchanged feed, 304:                {best['not_modified'] / best['changed'] * 100:8.1f} % of a changed feed's cost")
    print(f"unchanged feed, 200 same bytes:     {best['same_bytes'] / best['changed'] * 100:8.1f} % of a changed feed's cost")


if __name__ == "__main__":
    main()

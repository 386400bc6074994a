"""Dashboard benchmark: the newsroom dashboard over 1,000,000 subscribers and a year of editions in PostgreSQL,
against the naive queries the pre-aggregated figures replace, measured in the same run.

    .venv/bin/python bench/dashboard.py [--subscribers 1000000] [--editions 365] [--delivered 10] [--repeat 20]
                                        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--keep]

Seeds a database of its own on the server (created from --postgres's, dropped on exit unless --keep), in SQL with
generate_series: --subscribers readers (85 % confirmed, 8 % unsubscribed, 4 % bounced, 3 % pending; confirmed over
two years), one daily edition a day for --editions days, a delivery row per confirmed reader for the last
--delivered editions (the older ones' rows are not needed: their funnels were counted when they settled), 20
sources with 40 articles a day, a week of hourly views over 500 articles, 5 partners' daily requests and the
editions' campaign clicks. Then:
  (a) the `figures:daily` roll-up: the first one (90 days caught up, every edition's funnel counted) and the one the
      job runs every 5 minutes after it (today again, the editions still settling);
  (b) `build_dashboard` for 30 and 90 days, the five charts drawn from it (what the page pays once per roll-up and
      span: it keeps the drawn charts for the figures they show), `GET /api/dashboard` and the console's page
      `GET /admin` (a viewer's session) in-process over httpx's ASGI transport, --repeat times each: median, p95,
      best. Goal: under 300 ms;
  (c) the baseline: what the figures replace, read live: the confirmed count, each day's confirmations, unsubscribes
      and bounces grouped from the subscribers (90 days, in Asia/Seoul), and the last 10 editions' counts grouped
      from the deliveries (`DeliveryStore.stats`) with their clicks; reported as a ratio to (b).
`--subscribers 20000 --editions 60 --delivered 2 --repeat 5` is a quick look (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 KST: a day under way
GOAL_MS = 300
SOURCES, PARTNERS = 20, 5


def write_config(folder: Path, url: str) -> Path:
    q = json.dumps
    lines = ["[site]", 'name = "한빛일보"', 'base_url = "https://news.hanbit-ilbo.example"', 'timezone = "Asia/Seoul"',
             "", "[database]", f"url = {q(url)}", "", "[admin]", 'token = "bench-admin-token-0123456789"', "",
             "[mail]", 'url = "maildir://var/bench-outbox"', 'from = "한빛일보 <news@hanbit-ilbo.example>"',
             'postal_address = "한빛시 중앙로 123"', "", "[secrets]", 'signing_key = "bench-signing-key-0123456789"', "",
             "[digests.daily]", 'schedule = "0 7 * * *"', "", "[[categories]]", 'slug = "politics"', 'name = "정치"', ""]
    for n in range(SOURCES):
        lines += ["[[sources]]", f'name = "wire-{n:02d}"', 'kind = "feed"', f'url = "https://wire{n}.example/rss"',
                  'interval = "10m"', 'category = "politics"', ""]
    path = folder / "gazette.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


SEED = [
    # Readers: confirmed over the two years before NOW; the leavers left in the last year.
    """INSERT INTO subscribers (id, email, email_hash, public_id, status, categories, created_at, confirmed_at,
                                unsubscribed_at, consent_method, bounces)
       SELECT i, 'r' || i || '@example.com', md5('e' || i) || md5('f' || i), md5('p' || i),
              CASE WHEN i % 100 < 85 THEN 'confirmed' WHEN i % 100 < 93 THEN 'unsubscribed'
                   WHEN i % 100 < 97 THEN 'bounced' ELSE 'pending' END,
              '[]'::json, :now - make_interval(mins => ((i::bigint * 7919) % (730 * 1440))::int + 10),
              CASE WHEN i % 100 < 97 THEN :now - make_interval(mins => ((i::bigint * 7919) % (730 * 1440))::int) END,
              CASE WHEN i % 100 BETWEEN 85 AND 96 THEN :now - make_interval(mins => ((i::bigint * 104729) % (365 * 1440))::int) END,
              'admin', 0
       FROM generate_series(1, :subscribers) AS i""",
    "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :subscribers)",
    """INSERT INTO subscriber_editions (subscriber_id, edition) SELECT id, 'daily' FROM subscribers""",
    # One daily edition a day at 07:00 KST (22:00 UTC the day before), the last one today.
    """INSERT INTO editions (id, name, scheduled_at, period_start, period_end, status, created_at, finished_at)
       SELECT k, 'daily', s, s - interval '1 day', s, 'done', s, s + interval '20 minutes'
       FROM generate_series(1, :editions) AS k,
            LATERAL (SELECT date_trunc('day', :now) - interval '2 hours' - make_interval(days => :editions - k) AS s) t""",
    "SELECT setval(pg_get_serial_sequence('editions', 'id'), :editions)",
    """INSERT INTO deliveries (edition_id, subscriber_id, status, articles, attempts, sent_at)
       SELECT k, s.id, CASE WHEN s.id % 50 = 0 THEN 'failed' WHEN s.id % 97 = 0 THEN 'skipped' ELSE 'sent' END,
              12, 1, :now
       FROM generate_series(:editions - :delivered + 1, :editions) AS k, subscribers s
       WHERE s.status = 'confirmed'""",
    # 40 articles a day over the year, spread over the sources.
    """INSERT INTO articles (id, identity, url, title, summary, content_html, tags, published_at, updated_at, fetched_at,
                             changed_at, content_hash, revision, source_id, bylines)
       SELECT substr(md5('a' || i), 1, 16), 'guid:' || i, 'https://news.hanbit-ilbo.example/' || i, '기사 ' || i,
              '', '', '[]'::json, p, p, p, p, md5('h' || i), 1,
              (SELECT min(id) FROM sources) + i % :sources, '[]'::json
       FROM generate_series(1, :editions * 40) AS i,
            LATERAL (SELECT :now - make_interval(mins => i * 36) AS p) t""",
    """INSERT INTO article_views (article_id, hour_at, views)
       SELECT substr(md5('a' || a), 1, 16), date_trunc('hour', :now) - make_interval(hours => h), 1 + (a * h) % 40
       FROM generate_series(1, 500) AS a, generate_series(0, 167) AS h""",
    """INSERT INTO campaign_clicks (campaign, article_id, clicks)
       SELECT 'daily-' || k, substr(md5('a' || ((k - 1) * 40 + j)), 1, 16), 50 + (k * j) % 300
       FROM generate_series(1, :editions) AS k, generate_series(1, 12) AS j""",
    """INSERT INTO partners (slug, name, categories, full_content, created_at, include_images, embargo_minutes, origin)
       SELECT 'partner-' || p, '제휴사 ' || p, '[]'::json, true, :now, true, 0, 'admin'
       FROM generate_series(1, :partners) AS p""",
    """INSERT INTO partner_usage (partner_slug, day, requests, not_modified, rate_limited, bytes, clicks)
       SELECT 'partner-' || p, (:now AT TIME ZONE 'Asia/Seoul')::date - d, 200 + (p * d) % 500, 0, 0, 0, 0
       FROM generate_series(1, :partners) AS p, generate_series(0, :editions - 1) AS d""",
]

NAIVE_GROWTH = """
    SELECT (confirmed_at AT TIME ZONE 'Asia/Seoul')::date AS day, count(*) FROM subscribers
    WHERE confirmed_at >= :first GROUP BY 1
    UNION ALL
    SELECT (unsubscribed_at AT TIME ZONE 'Asia/Seoul')::date, count(*) FROM subscribers
    WHERE unsubscribed_at >= :first AND status = 'unsubscribed' GROUP BY 1
    UNION ALL
    SELECT (unsubscribed_at AT TIME ZONE 'Asia/Seoul')::date, count(*) FROM subscribers
    WHERE unsubscribed_at >= :first AND status IN ('bounced', 'complained') GROUP BY 1"""


def timed(run, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    run()  # warm: connections, caches, pygal's import
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median": statistics.median(times), "p95": times[max(0, round(0.95 * len(times)) - 1)], "best": times[0]}


def line(name: str, t: dict[str, float], extra: str = "") -> str:
    return f"  {name:<46} median {t['median']:8.1f} ms   p95 {t['p95']:8.1f} ms   best {t['best']:8.1f} ms{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--editions", type=int, default=365)
    parser.add_argument("--delivered", type=int, default=10, help="editions with their delivery rows")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("GAZETTE_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--keep", action="store_true", help="leave the bench database for a look")
    args = parser.parse_args()

    import httpx

    import service
    from newsletter.dashboard import build_dashboard
    from newsletter.settings import load_settings

    name = f"gazette_bench_dashboard_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    services = None

    def drop() -> None:
        if services is not None:
            services.close()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            print(f"kept database {name}")
        admin.dispose()

    atexit.register(drop)
    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    settings = load_settings(write_config(folder, url), {})
    services = service.Components(settings, clock=lambda: NOW)
    services.prepare_database(migrate=True)

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, nproc {os.cpu_count()}, {platform.system()} {platform.release()}, "
          f"CPython {platform.python_version()}")
    params = {"now": NOW, "subscribers": args.subscribers, "editions": args.editions, "delivered": args.delivered,
              "sources": SOURCES, "partners": PARTNERS}
    start = time.perf_counter()
    with services.engine.begin() as conn:
        for statement in SEED:
            conn.execute(sa.text(statement), params)
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    with services.engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("subscribers", "editions", "deliveries", "articles", "article_views")}
        postgres = conn.execute(sa.text("SHOW server_version")).scalar()
    print(f"seeded in {time.perf_counter() - start:.1f} s (PostgreSQL {postgres}): "
          + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

    figures = services.figures
    start = time.perf_counter()
    first = figures.roll_up(NOW)
    first_s = time.perf_counter() - start
    print(f"(a) first roll-up: {first_s:.2f} s ({first.summary()})")
    later = NOW + timedelta(minutes=5)
    start = time.perf_counter()
    again = figures.roll_up(later)
    print(f"    the 5-minute roll-up after it: {(time.perf_counter() - start) * 1000:.0f} ms ({again.summary()})")

    print(f"(b) the dashboard, {args.repeat} runs each (goal < {GOAL_MS} ms)")
    results: dict[str, dict[str, float]] = {}
    for days in (30, 90):
        results[f"build_dashboard({days} days)"] = timed(lambda: build_dashboard(
            figures, services.store, now=later, days=days, failure_limit=settings.fetch.failure_limit,
            sources=settings.sources), args.repeat)

    from zoneinfo import ZoneInfo

    from newsletter.dashboard_charts import dashboard_charts
    from templates import words

    ninety = build_dashboard(figures, services.store, now=later, days=90, failure_limit=settings.fetch.failure_limit,
                             sources=settings.sources)
    results["the five charts drawn (90 days; once a roll-up)"] = timed(
        lambda: dashboard_charts(ninety, words("ko"), ZoneInfo("Asia/Seoul")), max(3, args.repeat // 4))

    app = service.create_app(services)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://bench.example")
    token = {"Authorization": "Bearer bench-admin-token-0123456789"}

    services.accounts.add("bench@hanbit-ilbo.example", "viewer", "bench-password-0123")
    logged_in = services.accounts.log_in("bench@hanbit-ilbo.example", "bench-password-0123")
    session = {"Cookie": f"gazette_session={services.access.cookie_value(logged_in.secret)}"}  # type: ignore[union-attr]

    def get(path: str, headers: dict[str, str]) -> None:
        answer = loop.run_until_complete(client.get(path, headers=headers))
        assert answer.status_code == 200, answer.text[:300]

    for days in (30, 90):
        results[f"GET /api/dashboard?days={days}"] = timed(lambda: get(f"/api/dashboard?days={days}", token),
                                                           args.repeat)
    for days in (30, 90):
        results[f"GET /admin?days={days} (the page, charts)"] = timed(lambda: get(f"/admin?days={days}", session),
                                                                      args.repeat)
    for label, t in results.items():
        answered = not label.startswith("the five charts")  # drawn once per roll-up, not per answer
        print(line(label, t, "   OVER THE GOAL" if answered and t["median"] >= GOAL_MS else ""))

    print("(c) the baseline: the same figures read live from subscribers and deliveries")
    first_day = (later - timedelta(days=90)).astimezone(settings.site.timezone).replace(hour=0, minute=0)

    def naive() -> None:
        with services.engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM subscribers WHERE status = 'confirmed'")).scalar()
            conn.execute(sa.text(NAIVE_GROWTH), {"first": first_day}).all()
        for edition in services.deliveries.stats(limit=10):
            services.store.campaign_clicks(f"{edition.name}-{edition.id}")

    baseline = timed(naive, max(3, args.repeat // 4))
    print(line("naive growth + funnel (what the figures replace)", baseline))
    ours = results["build_dashboard(90 days)"]
    print(f"  ratio: the naive queries take {baseline['median'] / ours['median']:.1f}x the whole 90-day dashboard "
          f"(median {baseline['median']:.0f} ms against {ours['median']:.0f} ms)")
    page = results["GET /admin?days=90 (the page, charts)"]
    print(f"  ratio: the naive queries take {baseline['median'] / page['median']:.1f}x the 90-day page with its charts "
          f"(median {page['median']:.0f} ms)")
    loop.run_until_complete(client.aclose())
    loop.close()


if __name__ == "__main__":
    main()

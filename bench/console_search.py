"""The console's subscriber search at a million readers in PostgreSQL: each filter's first page and a page deep in
the list (keyset), with the bounded count, against the same queries without the trigram index of migration
newsletter_0004 (dropped for the baseline, in the same run, then put back).

    .venv/bin/python bench/console_search.py                   # 1,000,000 readers (about 2 minutes to fill)
    .venv/bin/python bench/console_search.py --readers 100000  # a quick look

It makes (and at the end drops) the database `gazette_bench_console` on the server of `--url` (default: the test
server, postgresql://postgres@127.0.0.1:5432/postgres), fills it with `generate_series` (a fifth of the readers
also get "weekly", one in seven chose only "politics", statuses spread 6:1:1:1:1), and prints the best of three
runs per case, in milliseconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds import db  # noqa: E402
from newsletter import db as newsletter_db  # noqa: E402
from newsletter.http.console.subscribers import COUNT_UP_TO, PAGE  # noqa: E402
from newsletter.subscribers import SubscriberStore  # noqa: E402

NAME = "gazette_bench_console"
INDEX = "ix_subscribers_email_trigrams"
CASES: list[tuple[str, dict[str, Any]]] = [
    ("no filter", {}),
    ("status complained", {"status": "complained"}),
    ("edition weekly", {"edition": "weekly"}),
    ("category economy", {"category": "economy"}),
    ("search 'gmail' (many)", {"search": "gmail"}),
    ("search 'reader99999@' (few)", {"search": "reader99999@"}),
    ("search 'zzzz' (none)", {"search": "zzzz"}),
    ("search '99' (2 letters)", {"search": "99"}),
    ("whole address (hash)", {"address": "reader77@gmail.com"}),
    ("naver + confirmed + economy", {"search": "naver", "status": "confirmed", "category": "economy"}),
]

FILL = """
INSERT INTO subscribers (id, email, email_hash, status, public_id, categories, created_at, consent_method, bounces)
SELECT g, 'reader' || g || '@' || (ARRAY['naver.com', 'gmail.com', 'daum.net', 'example.com'])[1 + g % 4],
       encode(sha256(convert_to('reader' || g || '@' || (ARRAY['naver.com', 'gmail.com', 'daum.net',
                                                               'example.com'])[1 + g % 4], 'UTF8')), 'hex'),
       (ARRAY['confirmed', 'confirmed', 'confirmed', 'confirmed', 'confirmed', 'confirmed', 'pending',
              'unsubscribed', 'bounced', 'complained'])[1 + g % 10],
       md5('p' || g), CASE WHEN g % 7 = 0 THEN '["politics"]'::json ELSE '["politics", "economy", "society"]'::json END,
       now() - (g || ' seconds')::interval, 'form', 0
FROM generate_series(1, :n) AS g
"""


def best_of(store: SubscriberStore, filters: dict[str, Any], before: int | None) -> tuple[float, int]:
    times, total = [], 0
    for _ in range(3):
        started = time.perf_counter()
        total, _ = store.list(**filters, limit=PAGE + 1, newest_first=True, before_id=before, count_up_to=COUNT_UP_TO)
        times.append((time.perf_counter() - started) * 1000)
    return min(times), total


def run(store: SubscriberStore, deep: int) -> dict[str, tuple[float, float, int]]:
    found = {}
    for name, filters in CASES:
        first, total = best_of(store, filters, None)
        later, _ = best_of(store, filters, deep)
        found[name] = (first, later, total)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--readers", type=int, default=1_000_000)
    args = parser.parse_args()
    server = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {NAME}"))
        conn.execute(sa.text(f"CREATE DATABASE {NAME}"))
    engine = sa.create_engine(sa.make_url(args.url).set(database=NAME))
    try:
        db.migrate(engine, (db.MIGRATIONS, newsletter_db.MIGRATIONS))
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(FILL), {"n": args.readers})
            conn.execute(sa.text("INSERT INTO subscriber_editions SELECT id, 'daily' FROM subscribers"))
            conn.execute(sa.text("INSERT INTO subscriber_editions SELECT id, 'weekly' FROM subscribers "
                                 "WHERE id % 5 = 0"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            kind = conn.execute(sa.text("SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                                        "WHERE c.relname = :i"), {"i": INDEX}).scalar_one()
        print(f"{args.readers:,} readers filled in {time.perf_counter() - started:.0f} s; {INDEX} is a {kind} index")
        store = SubscriberStore(engine, ("daily", "weekly"))
        deep = args.readers // 2
        with_index = run(store, deep)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP INDEX {INDEX}"))
        without = run(store, deep)
        print(f"\n{'case':32} {'found':>7} {'first page':>11} {'at id ' + format(deep, ','):>13}"
              f" {'no index: first':>16} {'deep':>8}")
        for name, _ in CASES:
            first, later, total = with_index[name]
            base_first, base_later, _ = without[name]
            shown = f"{total:,}" + ("+" if total >= COUNT_UP_TO else "")
            print(f"{name:32} {shown:>7} {first:9.1f} ms {later:10.1f} ms {base_first:13.1f} ms {base_later:5.0f} ms")
    finally:
        engine.dispose()
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {NAME}"))


if __name__ == "__main__":
    main()

"""Digest delivery benchmark: one daily edition to 100,000 subscribers in 20 segments over SMTP to postfix's
smtp-sink on loopback, against smtplib re-sending one pre-built digest in the same run.

    .venv/bin/python bench/digest.py [--subscribers 100000] [--concurrency 1,2,4,8] [--baseline-seconds 20]
                                     [--rounds 1] [--ceiling] [--dkim 5000] [--dkim-concurrency 2] [--profile]

For each --concurrency N (GAZETTE_MAIL_CONCURRENCY, and as many smtplib threads for the baseline):
  (a) personalised end-to-end msg/s: `Components.send("daily", at, everyone=True)` in a child process on a fresh copy
      of the seeded SQLite database (segments, rendering, per-subscriber links, delivery rows, SMTP);
  (b) the baseline: smtplib re-sending the median-sized real digest (from `Components.preview`) over N reused
      connections for --baseline-seconds. Goals: (a) >= 90 % of (b), and >= 1,100 msg/s;
  (c) the sending child's peak RSS (VmHWM; goal <= 300 MB), its deliveries rows (every subscriber "sent") and the
      messages smtp-sink counted.
`--ceiling` adds Gazette's own SMTP transport re-sending the same message: the same wire work as a send, without
personalising or bookkeeping. `--dkim N` adds a send signed with tests/data/dkim/test.key to N subscribers;
`--profile` adds py-spy (`--gil`) samples of one more send at the best concurrency (`.venv/bin/pip install py-spy`).
Needs Debian's postfix (/usr/sbin/smtp-sink); nothing leaves 127.0.0.1; smtp-sink is stopped on exit or error.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SINK = "/usr/sbin/smtp-sink"
SENDER = "newsletter@hanbit-ilbo.example"
CATEGORIES = [("politics", "정치"), ("economy", "경제"), ("society", "사회"), ("culture", "문화"), ("world", "국제"),
              ("sports", "스포츠")]
SLUGS = [slug for slug, _ in CATEGORIES]
# 20 segments: 6 single categories, 10 pairs, 4 triples; every fourth in English. 10 new articles per category
# in the window and max_articles = 20 give digests of 10 to 20 articles.
COMBOS = (list(itertools.combinations(SLUGS, 1)) + list(itertools.combinations(SLUGS, 2))[:10]
          + list(itertools.combinations(SLUGS, 3))[:4])
SEGMENTS = [(list(combo), "en" if i % 4 == 3 else "ko") for i, combo in enumerate(COMBOS)]
NAMES = ["김민준", "이서연", "박지호", "최수아", "정도윤", "강하은", "조예준", "윤지우", "장서준", "임채원"]
GOALS = {"ratio": 0.90, "rate": 1100, "rss_mb": 300}


# --- inputs -----------------------------------------------------------------------------------------------------

def write_config(folder: Path) -> Path:
    q = json.dumps  # a JSON string is a TOML basic string
    lines = ["[site]", 'name = "한빛일보"', 'base_url = "https://news.hanbit-ilbo.example"', 'timezone = "Asia/Seoul"',
             'language = "ko"', "", "[database]", f"url = {q('sqlite:///' + str(folder / 'base.db'))}", "", "[mail]",
             f'from = "한빛일보 뉴스레터 <{SENDER}>"', 'postal_address = "한빛시 중앙로 123 한빛일보사"', "",
             "[secrets]", 'signing_key = "bench-signing-key-0123456789"', "",
             "[digests.daily]", 'schedule = "0 7 * * *"', "max_articles = 20", ""]
    for slug, name in CATEGORIES:
        lines += ["[[categories]]", f"slug = {q(slug)}", f"name = {q(name)}", ""]
    path = folder / "gazette.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def gazette_env(db: Path | str, **mail: str) -> dict[str, str]:
    """The environment of a Gazette child: `db` a SQLite file, or a database URL (str)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAZETTE_")}
    env["GAZETTE_DATABASE_URL"] = db if isinstance(db, str) else f"sqlite:///{db}"
    env.update({f"GAZETTE_MAIL_{k.upper()}": v for k, v in mail.items()})
    return env


def address(i: int) -> str:
    return f"reader{i}@example.{('com', 'net', 'org')[i % 3]}"


def seed(config: Path, db: Path | str, subscribers: int, at: datetime, days: int) -> list[bytes]:
    """Articles (10 per category in the edition's 24 h, `days` days of older ones), hourly views, subscribers
    (subscriber i in segment i % 20); returns each segment's digest as sent (CRLF), from `Components.preview`.
    `db` is a SQLite file or a database URL (str); subscribers go in 10,000 at a time, made as they go (a million
    rows built at once would take GBs)."""
    from sqlalchemy import insert

    import service
    from feeds.model import Article
    from feeds.normalise import article_id
    from newsletter.db import subscriber_editions
    from newsletter.db import subscribers as subscribers_table
    from newsletter.records import email_hash
    from newsletter.settings import load_settings

    demo = json.loads((ROOT / "examples" / "demo" / "articles.json").read_text(encoding="utf-8"))["articles"]
    services = service.Components(load_settings(config, gazette_env(db)))
    services.prepare_database(migrate=True)

    def article(n: int, published: datetime) -> Article:
        d, identity = demo[n % len(demo)], f"guid:bench-{n}"
        return Article(id=article_id(identity), identity=identity, guid=f"bench-{n}", title=d["title"],
                       url=f"https://news.hanbit-ilbo.example/news/{n}", summary=d["summary"], byline=d["byline"],
                       content_html="".join(f"<p>{p}</p>" for p in d["paragraphs"]), author_email=d["email"],
                       category=SLUGS[n % 6], tags=tuple(d["tags"]), published_at=published, updated_at=published,
                       image_url=f"https://news.hanbit-ilbo.example/images/{n}.jpg" if n % 3 == 0 else None,
                       content_hash=f"bench-{n}")

    fresh = [article(k, at - timedelta(minutes=10 + 22 * k)) for k in range(60)]
    old = [article(60 + k, at - timedelta(days=1 + k // 60, minutes=7 * (k % 60))) for k in range(60 * days)]
    for start in range(0, len(fresh + old), 500):
        services.store.upsert_articles((fresh + old)[start:start + 500], source_id=None, now=at)
    services.store.add_views_batch([(a.id, at - timedelta(hours=h), 1 + (k * 37 + h * 11) % (400 // (1 + k % 20)))
                                    for k, a in enumerate(fresh)
                                    for h in range(1, 1 + int((at - a.published_at).total_seconds() // 3600))])
    joined = at - timedelta(days=40)

    def row(i: int) -> dict:
        return {"id": i, "email": address(i), "email_hash": email_hash(address(i)),
                "name": NAMES[i % 10] if i % 2 else None, "status": "confirmed", "categories": SEGMENTS[i % 20][0],
                "language": SEGMENTS[i % 20][1], "timezone": None, "public_id": f"bench-{i}", "created_at": joined,
                "confirmed_at": joined, "consent_method": "form", "bounces": 0}

    with services.engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # COPY: a million rows in a minute rather than many
            columns = list(row(1))
            with conn.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY subscribers ({', '.join(columns)}) FROM STDIN") as copy:
                    for i in range(1, subscribers + 1):
                        r = row(i)
                        copy.write_row([json.dumps(r[c]) if c == "categories" else r[c] for c in columns])
                with cursor.copy("COPY subscriber_editions (subscriber_id, edition) FROM STDIN") as copy:
                    for i in range(1, subscribers + 1):
                        copy.write_row((i, "daily"))
            # statistics, as autovacuum would gather them (the tests' server runs without it): without them the
            # planner takes the audience for a few hundred rows and sorts all of it for every page
            conn.exec_driver_sql("ANALYZE")
        else:
            for start in range(1, subscribers + 1, 10_000):
                ids = range(start, min(start + 10_000, subscribers + 1))
                conn.execute(insert(subscribers_table), [row(i) for i in ids])
                conn.execute(insert(subscriber_editions), [{"subscriber_id": i, "edition": "daily"} for i in ids])
    messages = [services.preview("daily", at, address(i)) for i in range(1, 21)]
    services.close()  # the last connection closed checkpoints the WAL: the file alone is copied for each run
    assert isinstance(db, str) or not Path(f"{db}-wal").exists()
    assert all(messages), "every segment has a digest"
    return [m["eml"].replace(b"\n", b"\r\n") for m in messages]  # type: ignore[index]


# --- the measured children (this script again, `--child JSON`) --------------------------------------------------

def memory_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident set. Not ru_maxrss: Linux carries the parent's
    high-water mark over fork and exec into a child's ru_maxrss, and the parent here holds the seeded rows."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def child_send(job: dict) -> dict:
    import service
    from newsletter.settings import load_settings

    services = service.Components(load_settings(Path(job["config"]), os.environ))
    services.prepare_database(migrate=False)
    rss_before, cpu_before, start = memory_mb("VmRSS"), time.process_time(), time.perf_counter()
    report = services.send("daily", datetime.fromisoformat(job["at"]), everyone=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_before
    services.close()
    return {"report": report.line(), "sent": report.sent, "seconds": seconds, "cpu": cpu, "rss_start_mb": rss_before,
            "rss_mb": memory_mb()}


def child_baseline(job: dict) -> dict:
    """smtplib (or, for --ceiling, Gazette's own SMTP transport) re-sending one pre-built message over `threads`
    reused connections for `seconds`; one message each before the clock starts, to connect."""
    data, n = Path(job["message"]).read_bytes(), job["threads"]
    counts, ready = [0] * n, threading.Barrier(n + 1)

    def work(i: int) -> None:
        if job["transport"]:
            from newsletter.transport import SmtpTransport
            conn = SmtpTransport(f"smtp://127.0.0.1:{job['port']}")
            send = lambda: conn.send(SENDER, f"reader{i + 1}@example.com", data)  # noqa: E731
        else:
            conn = smtplib.SMTP("127.0.0.1", job["port"], timeout=30)
            send = lambda: conn.sendmail(SENDER, [f"reader{i + 1}@example.com"], data)  # noqa: E731
        send()
        ready.wait()
        end = time.perf_counter() + job["seconds"]
        while time.perf_counter() < end:
            send()
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    cpu_before, start = time.process_time(), time.perf_counter()
    for t in threads:
        t.join()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_before
    return {"sent": sum(counts), "seconds": seconds, "cpu": cpu, "rss_mb": memory_mb()}


class Sink:
    """postfix's smtp-sink on 127.0.0.1, counting what it receives (`-c` writes `mesg=N` as messages arrive)."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = folder / "smtp-sink.out"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # as root it must drop privileges
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([SINK, "-c", *user, f"127.0.0.1:{self.port}", "1000"], stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"smtp-sink did not listen on {self.port}: {self.log.read_text(errors='replace')}")

    def counters(self) -> tuple[int, float]:
        """Messages received so far, and the sink's CPU seconds."""
        found = re.findall(rb"mesg=(\d+)", self.log.read_bytes()[-300:])
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(found[-1]) if found else 0), (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_child(folder: Path, sink: Sink, job: dict, env: dict[str, str], profile: Path | None = None) -> dict:
    """Run one measured child; its figures plus what the sink received meanwhile, and its CPU."""
    result = folder / "child.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps({**job, "result": str(result)})]
    if profile is not None:  # py-spy starts the child and samples the thread holding the GIL, if any
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "--rate", "100", "--format", "raw",
                   "--output", str(profile), "--", *command]
    received, sink_cpu = sink.counters()
    done = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0 or not result.exists():
        raise SystemExit(f"child {job['mode']} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    time.sleep(0.2)  # the sink's counter line for the last message
    after = sink.counters()
    return {**json.loads(result.read_text()), "sink": after[0] - received, "sink_cpu": after[1] - sink_cpu}


def gazette_send(folder: Path, sink: Sink, config: Path, base: Path, at: datetime, concurrency: int,
                 dkim: bool = False, profile: Path | None = None) -> dict:
    from sqlalchemy import create_engine, func, select

    from newsletter.db import deliveries

    db = folder / "run.db"
    shutil.copyfile(base, db)
    mail = {"url": f"smtp://127.0.0.1:{sink.port}", "rate_per_second": "100000", "concurrency": str(concurrency)}
    if dkim:
        mail.update(dkim_selector="test", dkim_key_file=str(ROOT / "tests" / "data" / "dkim" / "test.key"))
    result = run_child(folder, sink, {"mode": "send", "config": str(config), "at": at.isoformat()},
                       gazette_env(db, **mail), profile)
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:  # what the sender recorded: every subscriber once, as sent
        result["rows"] = dict(conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all())
        result["distinct_sent"] = conn.execute(select(func.count(deliveries.c.subscriber_id.distinct()))
                                               .where(deliveries.c.status == "sent")).scalar_one()
    engine.dispose()
    db.unlink()
    return result


def baseline(folder: Path, sink: Sink, message: Path, threads: int, seconds: float, transport: bool = False) -> dict:
    job = {"mode": "baseline", "message": str(message), "port": sink.port, "threads": threads, "seconds": seconds,
           "transport": transport}
    return run_child(folder, sink, job, dict(os.environ))


# --- report -------------------------------------------------------------------------------------------------------

def profile_summary(raw: Path, seconds: float, top: int = 16) -> str:
    """GIL-holding samples during the send (stacks through newsletter/send.py), by thread and function."""
    prefix = re.compile(rf" \((?:.*?/site-packages/|{re.escape(str(ROOT))}/|.*?/python3\.\d+/)?(.*):\d+\)$")
    leaf, inclusive, thread = Counter(), Counter(), Counter()  # type: ignore[var-annotated]
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [prefix.sub(r" (\1)", f) for f in stack.split(";")]
        if not n.isdigit() or not any("(newsletter/send.py)" in f for f in frames):
            continue
        leaf[frames[-1]] += int(n)
        thread["sender workers" if "Workers._work (newsletter/send.py)" in frames else "recorder" if
               "Workers._record (newsletter/send.py)" in frames else "main (segments, links, queue rows)"] += int(n)
        for f in set(frames):
            if f.rpartition(" (")[2].startswith(("newsletter/", "feeds/", "itsdangerous/", "smtplib", "base64")):
                inclusive[f] += int(n)
    total = sum(leaf.values()) or 1
    lines = [f"py-spy --gil, 100 Hz: {total} samples of the GIL's holder during the send ({seconds:.1f} s): the GIL "
             f"is held {total / (100 * seconds) * 100:.0f} % of the time; by thread (share of the send's wall time):"]
    lines += [f"    {c / (100 * seconds) * 100:5.1f} %  {name}" for name, c in thread.most_common()]
    lines.append("  self time by function (% of GIL samples):")
    lines += [f"    {c / total * 100:5.1f} %  {f}" for f, c in leaf.most_common(top)]
    lines.append("  Gazette, itsdangerous, smtplib and base64 frames, inclusive:")
    lines += [f"    {c / total * 100:5.1f} %  {f}" for f, c in inclusive.most_common(top + 6)]
    return "\n".join(lines)


def source_digest() -> str:
    """A hash of the code under test, to tell whether it changed during the run (others edit the tree)."""
    files = sorted(p for d in ("newsletter", "feeds", "templates") for p in (ROOT / d).rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts) + [ROOT / "service.py"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]  # read-only
    head = subprocess.run(git + ["log", "-1", "--format=%h"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "newsletter", "feeds", "service.py", "templates"],
                           capture_output=True, text=True).stdout.strip()
    return (f"machine: {cpu}, nproc {os.cpu_count()}, {platform.system()} {platform.release()}; "
            f"{platform.python_implementation()} {platform.python_version()}\n"
            f"code: {head or '?'}{' with uncommitted changes' if dirty else ''} (sources {source_digest()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--concurrency", default="1,2,4,8", help="GAZETTE_MAIL_CONCURRENCY values, comma-separated")
    parser.add_argument("--baseline-seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="baseline + send per concurrency this often; best kept")
    parser.add_argument("--days", type=int, default=30, help="days of older articles in the store")
    parser.add_argument("--dkim", type=int, default=5000, help="subscribers of the signed send (0: none)")
    parser.add_argument("--dkim-concurrency", type=int, default=2)
    parser.add_argument("--ceiling", action="store_true", help="also time Gazette's SMTP transport re-sending the message")
    parser.add_argument("--profile", action="store_true", help="py-spy one more send at the best concurrency")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        Path(job["result"]).write_text(json.dumps((child_send if job["mode"] == "send" else child_baseline)(job)))
        return
    if not Path(SINK).exists():
        parser.error(f"{SINK} is missing (Debian: apt-get install -y postfix)")
    if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
        parser.error("py-spy is not installed: .venv/bin/pip install py-spy")
    levels = [int(c) for c in args.concurrency.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below on SIGTERM too
    folder = Path(tempfile.mkdtemp(prefix="gazette-digest-bench-"))
    sink = None
    try:
        code = machine()
        print(code, flush=True)
        at = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        config, base, message = write_config(folder), folder / "base.db", folder / "baseline.eml"
        started = time.perf_counter()
        messages = sorted(seed(config, base, args.subscribers, at, args.days), key=len)
        if args.dkim:
            seed(config, folder / "dkim.db", args.dkim, at, args.days)
        message.write_bytes(messages[10])  # the median-sized digest
        sizes = [len(m) for m in messages]
        print(f"seeded {args.subscribers:,} subscribers in 20 segments, {60 * (args.days + 1):,} articles and their views "
              f"in {time.perf_counter() - started:.1f} s; digests {sizes[0] / 1024:.1f}-{sizes[-1] / 1024:.1f} KB (mean "
              f"{statistics.mean(sizes) / 1024:.1f}), the baseline's {len(message.read_bytes()) / 1024:.1f} KB", flush=True)
        sink = Sink(folder)
        best: dict[int, tuple[dict, dict]] = {}
        ceiling: dict[int, dict] = {}
        rate = lambda r: r["sent"] / r["seconds"]  # noqa: E731
        for round_ in range(args.rounds):
            for n in levels:
                b = baseline(folder, sink, message, n, args.baseline_seconds)
                g = gazette_send(folder, sink, config, base, at, n)
                print(f"  round {round_ + 1}, concurrency {n}: baseline {rate(b):,.0f} msg/s; gazette {rate(g):,.0f} msg/s "
                      f"({g['seconds']:.1f} s, peak RSS {g['rss_mb']:.0f} MB); {g['report']}", flush=True)
                old = best.get(n, (b, g))
                best[n] = (max(old[0], b, key=rate), max(old[1], g, key=rate))
                if args.ceiling:
                    c = baseline(folder, sink, message, n, args.baseline_seconds, transport=True)
                    ceiling[n] = max(ceiling.get(n, c), c, key=rate)
        rows = [(str(n), b, g) for n, (b, g) in best.items()]
        if args.dkim:
            b = best[args.dkim_concurrency][0] if args.dkim_concurrency in best else baseline(
                folder, sink, message, args.dkim_concurrency, args.baseline_seconds)
            rows.append((f"{args.dkim_concurrency}, DKIM, {args.dkim:,} subscribers", b,
                         gazette_send(folder, sink, config, folder / "dkim.db", at, args.dkim_concurrency, dkim=True)))
        profile = ""
        if args.profile:
            n = max(best, key=lambda k: rate(best[k][1]))
            p = gazette_send(folder, sink, config, base, at, n, profile=folder / "profile.txt")
            profile = (f"profiled send, concurrency {n}: {rate(p):,.0f} msg/s under py-spy\n"
                       + profile_summary(folder / "profile.txt", p["seconds"]))
        print(f"\n{args.subscribers:,} subscribers in 20 segments to smtp-sink on 127.0.0.1, best of {args.rounds}; baseline: "
              f"smtplib re-sending one {len(message.read_bytes()) / 1024:.1f} KB digest for {args.baseline_seconds:g} s")
        print("| concurrency | baseline | gazette | gazette / baseline | peak RSS (before the send) | CPU per message: "
              "sender, smtp-sink (baseline's) | deliveries rows | smtp-sink got |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, b, g in rows:
            us = lambda r, key: r[key] / r["sent"] * 1e6  # noqa: E731
            print(f"| {name} | {rate(b):,.0f} msg/s | {rate(g):,.0f} msg/s | {rate(g) / rate(b) * 100:.1f} % | "
                  f"{g['rss_mb']:.0f} MB ({g['rss_start_mb']:.0f}) | {us(g, 'cpu'):,.0f} µs, {us(g, 'sink_cpu'):,.0f} µs "
                  f"({us(b, 'cpu'):,.0f}, {us(b, 'sink_cpu'):,.0f}) | {', '.join(f'{k} {v:,}' for k, v in g['rows'].items())}"
                  f" ({g['distinct_sent']:,} subscribers) | {g['sink']:,} |")
        print(f"goals: gazette / baseline >= {GOALS['ratio']:.0%}, >= {GOALS['rate']:,} msg/s, peak RSS <= "
              f"{GOALS['rss_mb']} MB, every subscriber recorded as sent")
        if ceiling:
            print("\n| concurrency | Gazette's SMTP transport re-sending the same message | gazette / that |\n| --- | --- | --- |")
            for n, c in ceiling.items():
                print(f"| {n} | {rate(c):,.0f} msg/s | {rate(best[n][1]) / rate(c) * 100:.1f} % |")
        if profile:
            print("\n" + profile)
        print(f"sources {source_digest()} at the end" + ("" if source_digest() in code else " (CHANGED during the run)"))
    finally:
        if sink is not None:
            sink.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scale benchmark: a million readers in bounded memory, and the [queue] path against the in-process send.

    .venv/bin/python bench/scale.py [--part memory,queue] [--stores sqlite,postgres] [--sizes 10000,100000,1000000]
                                    [--queue-readers 100000] [--workers 1,2,3] [--postgres URL] [--limit SECONDS]

memory: `Components.send("daily", at, everyone=True)` in a child process (bench/digest.py's child, mail concurrency
  2, rate 100,000/s) to postfix's smtp-sink, at each --sizes on each store, seeded fresh per size (bench/digest.py's
  `seed`: 20 segments, 10-20 articles each). Per size: seconds, µs per message and its ratio to the smallest size of
  the same run (goal: flat), the child's peak RSS (VmHWM; goal <= 300 MB), the deliveries rows (every subscriber
  "sent" once) and what smtp-sink counted.
queue: --queue-readers on PostgreSQL (a database seeded once and copied with CREATE DATABASE ... TEMPLATE per run):
  the in-process send, then `gazette digest send` with [queue] url (a RabbitMQ virtual host of its own per run) and
  redis_url, sent by 1, 2, 3 `gazette worker --concurrency 2` processes started and consuming before the send. Per
  run: msg/s from the edition row's created_at to its finished_at ("done"), the same from the command's start, the
  CPU per message of Gazette's processes (producer + workers, or the one sender), and the queue path's overhead
  against the in-process send. Then the broker's and Redis's own costs for a projection to N machines: RabbitMQ
  publishing and consuming (prefetch 1, ack each) batch-sized tasks, and one token-bucket call to Redis.
Load from other processes is printed with each figure (/proc/loadavg: the 1-minute average and runnable tasks).
`--limit S` stops each in-process send of the memory part after S seconds and reports what it sent by then (for a
machine too busy to finish a million in the time there is); the child's RSS, CPU and smtp-sink's count are sampled
every 10 s, so the pace and the resident set along the edition are printed too. Needs smtp-sink, the PostgreSQL of
the tests (127.0.0.1:5432, database `test`: databases of its own are made there and dropped on exit), and for the
queue part rabbitmqctl, RabbitMQ on 127.0.0.1:5672 (guest) and Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import digest  # noqa: E402  bench/digest.py: seed, write_config, Sink, run_child, machine
import sqlalchemy as sa  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
RABBIT = "amqp://guest:guest@127.0.0.1:5672"
MAIL_CONCURRENCY = 2
GOALS = {"rss_mb": 300, "overhead": 0.15}


def load() -> str:
    parts = Path("/proc/loadavg").read_text().split()
    return f"load {parts[0]}, {parts[3].split('/')[0]} runnable"


def psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class Postgres:
    """Scratch databases on the test server, each dropped on `drop` or at `close`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = sa.create_engine(psycopg(url), isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"gazette_scale_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        self.made.append(name)
        return name

    def url_of(self, name: str) -> str:
        return psycopg(sa.make_url(self.url).set(database=name).render_as_string(hide_password=False))

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.made.remove(name)

    def close(self) -> None:
        for name in list(self.made):
            self.drop(name)
        self.admin.dispose()


def ledger(url: str) -> dict:
    """What the run recorded: deliveries by status, subscribers with a sent row, the edition's own times."""
    from newsletter.db import deliveries, editions

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)).all())
            distinct = conn.execute(sa.select(sa.func.count(deliveries.c.subscriber_id.distinct()))
                                    .where(deliveries.c.status == "sent")).scalar_one()
            edition = conn.execute(sa.select(editions.c.status, editions.c.created_at, editions.c.finished_at)).one()
    finally:
        engine.dispose()
    return {"rows": rows, "distinct_sent": distinct, "status": edition.status,
            "edition_seconds": (edition.finished_at - edition.created_at).total_seconds() if edition.finished_at else None}


def mail_env(sink: digest.Sink) -> dict[str, str]:
    return {"url": f"smtp://127.0.0.1:{sink.port}", "rate_per_second": "100000", "concurrency": str(MAIL_CONCURRENCY)}


def in_process(folder: Path, sink: digest.Sink, config: Path, db: Path | str, url: str, at: datetime,
               profile: Path | None = None) -> dict:
    before = load()
    result = digest.run_child(folder, sink, {"mode": "send", "config": str(config), "at": at.isoformat()},
                              digest.gazette_env(db, **mail_env(sink)), profile)
    return {**result, **ledger(url), "load_before": before, "load_after": load()}


def watched(folder: Path, sink: digest.Sink, config: Path, db: Path | str, url: str, at: datetime,
            limit: float) -> dict:
    """bench/digest.py's send child, its resident set and smtp-sink's count sampled every 10 s; stopped after
    `limit` seconds (0: never) when the machine is too busy for the whole edition in the time there is."""
    result = folder / "child.json"
    result.unlink(missing_ok=True)
    job = {"mode": "send", "config": str(config), "at": at.isoformat(), "result": str(result)}
    received, sink_cpu = sink.counters()
    before, start = load(), time.perf_counter()
    child = subprocess.Popen([sys.executable, str(Path(digest.__file__).resolve()), "--child", json.dumps(job)],
                             env=digest.gazette_env(db, **mail_env(sink)), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=open(folder / "child.err", "wb"))
    samples: list[tuple[float, int, float, float, float]] = []  # seconds, messages, VmRSS, VmHWM, CPU seconds
    stopped = False
    try:
        while child.poll() is None:
            time.sleep(10)
            try:
                status = dict(x.split(":", 1) for x in Path(f"/proc/{child.pid}/status").read_text().splitlines())
            except (FileNotFoundError, ValueError):
                break
            if "VmRSS" not in status:  # exiting
                break
            elapsed = time.perf_counter() - start
            samples.append((elapsed, sink.counters()[0] - received, int(status["VmRSS"].split()[0]) / 1024,
                            int(status["VmHWM"].split()[0]) / 1024, cpu_of(child.pid)))
            print(f"    {elapsed:6.0f} s: {samples[-1][1]:,} sent, RSS {samples[-1][2]:.0f} MB (peak {samples[-1][3]:.0f})"
                  f", {load()}", flush=True)
            if limit and elapsed > limit:
                child.terminate()
                stopped = True
                break
    finally:  # stopped, or this script interrupted: the child goes too
        if child.poll() is None:
            child.terminate()
    child.wait()
    time.sleep(0.3)
    got, sink_after = sink.counters()
    if stopped:
        r = {"seconds": samples[-1][0], "sent": samples[-1][1], "rss_mb": samples[-1][3], "rss_start_mb": samples[0][2],
             "cpu": None, "report": f"stopped after {samples[-1][0]:.0f} s", "stopped": True}
    elif child.returncode != 0 or not result.exists():
        raise SystemExit(f"send child failed ({child.returncode}): {(folder / 'child.err').read_text()[-3000:]}")
    else:
        r = {**json.loads(result.read_text()), "stopped": False}
    return {**r, **ledger(url), "sink": got - received, "sink_cpu": sink_after - sink_cpu, "samples": samples,
            "load_before": before, "load_after": load()}


# --- 1. a million readers ------------------------------------------------------------------------------------------

def steady_us(samples: list[tuple[float, int, float, float, float]], field: int = 0) -> float | None:
    """µs (wall, or with field 4 the sender's CPU) per message between the first and the last sample: the send's
    own pace, without the start."""
    if len(samples) < 2 or samples[-1][1] <= samples[0][1]:
        return None
    return (samples[-1][field] - samples[0][field]) / (samples[-1][1] - samples[0][1]) * 1e6


def memory_part(folder: Path, sink: digest.Sink, stores: list[str], sizes: list[int], pg: Postgres, at: datetime,
                days: int, limit: float) -> list[str]:
    out = []
    for store in stores:
        rows = []
        for n in sizes:
            run = folder / f"{store}-{n}"
            run.mkdir()
            config = digest.write_config(run)
            name = pg.create() if store == "postgres" else None
            db: Path | str = pg.url_of(name) if name else run / "base.db"
            url = db if isinstance(db, str) else f"sqlite:///{db}"
            started = time.perf_counter()
            digest.seed(config, db, n, at, days)
            seeded = time.perf_counter() - started
            print(f"  {store} {n:,}: seeded in {seeded:.0f} s", flush=True)
            r = watched(run, sink, config, db, url, at, limit)
            r["seed_seconds"] = seeded
            rows.append((n, r))
            print(f"  {store} {n:,}: {r['sent']:,} sent in {r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB; "
                  f"{r['report']}; {r['rows']}; sink {r['sink']:,}; {r['load_before']} -> {r['load_after']}", flush=True)
            if name:
                pg.drop(name)
            shutil.rmtree(run)
        base = steady_us(rows[0][1]["samples"]) or rows[0][1]["seconds"] / rows[0][0] * 1e6
        table = [f"\n{store}: one daily edition in 20 segments to smtp-sink, mail concurrency {MAIL_CONCURRENCY}",
                 "| subscribers | seeded | sent | time | µs per message (steady, between the first and last 10 s "
                 "sample) | / the smallest | sender CPU per message (steady) | / the smallest | peak RSS (at start) | "
                 "deliveries rows | smtp-sink got | load before → after |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        cpu_base = steady_us(rows[0][1]["samples"], 4) or 1
        for n, r in rows:
            us = steady_us(r["samples"]) or r["seconds"] / r["sent"] * 1e6
            table.append(f"| {n:,} | {r['seed_seconds']:.0f} s | {r['sent']:,}{' (stopped)' if r['stopped'] else ''} | "
                         f"{r['seconds']:.0f} s | {us:,.0f} µs | {us / base:.2f} | {steady_us(r['samples'], 4) or 0:,.0f} µs"
                         f" | {(steady_us(r['samples'], 4) or 0) / cpu_base:.2f} | {r['rss_mb']:.0f} MB "
                         f"({r['rss_start_mb']:.0f}) | {', '.join(f'{k} {v:,}' for k, v in r['rows'].items())} "
                         f"({r['distinct_sent']:,} subscribers) | {r['sink']:,} | {r['load_before']} → {r['load_after']} |")
        for n, r in rows:
            if len(r["samples"]) > 2:
                step = max(1, len(r["samples"]) // 12)
                table.append(f"\n{n:,}: resident set as the send went (messages sent: VmRSS MB, wall and CPU µs/msg "
                             "in the last window): " + "; ".join(
                                 f"{m:,}: {rss:.0f} MB, {(t - pt) / max(m - pm, 1) * 1e6:,.0f} µs, "
                                 f"{(c - pc) / max(m - pm, 1) * 1e6:,.0f} µs"
                                 for (pt, pm, _, _, pc), (t, m, rss, _, c) in zip(r["samples"][:-step:step],
                                                                                r["samples"][step::step])))
        out.append("\n".join(table))
        print(out[-1], flush=True)
    return out


# --- 2. the queue path ---------------------------------------------------------------------------------------------

def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120).stdout


class Vhost:
    def __init__(self) -> None:
        self.name = f"gazette-scale-{uuid.uuid4().hex[:10]}"
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        self.url = f"{RABBIT}/{self.name}"

    def consumers(self) -> int:
        return len([x for x in rabbitmqctl("list_consumers", "-p", self.name).splitlines() if x.strip()])

    def close(self) -> None:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True, timeout=120)


def gazette_command() -> list[str]:
    return [sys.executable, "-m", "service"]  # this checkout's code (PYTHONPATH), as the installed script runs it


def cpu_of(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def peak_of(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def queued(folder: Path, sink: digest.Sink, config: Path, url: str, at: datetime, workers: int, n: int) -> dict:
    """`gazette digest send` with [queue], sent by `workers` gazette worker processes."""
    vhost = Vhost()
    env = {**digest.gazette_env(url, **mail_env(sink)), "GAZETTE_QUEUE_URL": vhost.url,
           "GAZETTE_QUEUE_REDIS_URL": REDIS_URL, "PYTHONPATH": str(digest.ROOT)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(workers):
            with open(folder / f"worker-{workers}-{i}.log", "wb") as log:
                processes.append(subprocess.Popen(gazette_command() + ["--config", str(config), "worker", "--concurrency",
                                                                       str(MAIL_CONCURRENCY)], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while vhost.consumers() < workers:  # every worker consuming before the clock starts
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit("workers did not start:\n" + "\n".join(
                    p.read_text(errors="replace")[-2000:] for p in folder.glob(f"worker-{workers}-*.log")))
            time.sleep(0.5)
        cpu_before = [cpu_of(p.pid) for p in processes]
        received, sink_cpu = sink.counters()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, start = load(), time.perf_counter()
        done = subprocess.run(gazette_command() + ["--config", str(config), "digest", "send", "daily", "--at", at.isoformat()],
                              env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        produced = time.perf_counter() - start
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"digest send failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        engine = sa.create_engine(url)
        from newsletter.db import editions
        deadline = time.monotonic() + 3600
        while True:
            with engine.connect() as conn:
                if conn.execute(sa.select(editions.c.status)).scalar() == "done":
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the edition did not finish within an hour")
            time.sleep(0.1)
        wall = time.perf_counter() - start
        engine.dispose()
        time.sleep(0.3)  # the sink's last counter line
        worker_cpu = sum(cpu_of(p.pid) - c for p, c in zip(processes, cpu_before))
        peaks = [peak_of(p.pid) for p in processes]
        got, sink_after = sink.counters()
        producer_cpu = (after_children.ru_utime + after_children.ru_stime) - (children.ru_utime + children.ru_stime)
        return {**ledger(url), "wall": wall, "produced": produced, "producer_out": done.stdout.strip().splitlines()[-1],
                "cpu": worker_cpu + producer_cpu, "worker_cpu": worker_cpu, "producer_cpu": producer_cpu,
                "rss_mb": max(peaks), "sink": got - received, "sink_cpu": sink_after - sink_cpu,
                "load_before": before, "load_after": load()}
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        vhost.close()


def broker_costs(tasks: int, bucket_calls: int) -> dict:
    """RabbitMQ taking batch tasks as Gazette puts them (persistent, durable queue) and as a worker takes them
    (prefetch 1, acknowledged one by one); one TokenBucket.reserve() on Redis."""
    from kombu import Consumer

    from feeds.core.shared import SharedState, TokenBucket
    from feeds.core.work_queue import BATCH, QUEUE, TaskQueue, celery_app

    def server_cpu(name: str) -> float:
        pids = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
        return sum(cpu_of(int(pid)) for pid in pids)

    vhost = Vhost()
    rabbit_cpu = server_cpu("beam.smp")
    try:
        app = celery_app(vhost.url)
        producer = TaskQueue(app)
        producer.put(BATCH, 0)  # connect and declare first
        start = time.perf_counter()
        for i in range(tasks):
            producer.put(BATCH, i + 1)
        published = time.perf_counter() - start
        got = [0]
        with app.connection_for_read() as conn:
            channel = conn.channel()

            def take(body, message):  # type: ignore[no-untyped-def]
                message.ack()
                got[0] += 1

            with Consumer(channel, queues=[app.amqp.queues[QUEUE]], callbacks=[take], accept=["json"],
                          prefetch_count=1):
                start = time.perf_counter()
                while got[0] < tasks + 1:
                    conn.drain_events(timeout=30)
                consumed = time.perf_counter() - start
        producer.close()
        rabbit_cpu = server_cpu("beam.smp") - rabbit_cpu
    finally:
        vhost.close()
    state = SharedState(REDIS_URL, secret="bench-scale")
    bucket = TokenBucket(state, f"bench-scale-{uuid.uuid4().hex}", 1e9)
    bucket.reserve()
    redis_cpu, start = server_cpu("redis-server"), time.perf_counter()
    for _ in range(bucket_calls):
        bucket.reserve()
    per_call = (time.perf_counter() - start) / bucket_calls
    redis_cpu = server_cpu("redis-server") - redis_cpu
    # the servers' CPU includes whatever else uses them meanwhile (other tests): an upper bound of their share
    return {"publish": tasks / published, "consume": tasks / consumed, "bucket_us": per_call * 1e6, "load": load(),
            "rabbit_cpu_us": rabbit_cpu / tasks * 1e6, "redis_cpu_us": redis_cpu / bucket_calls * 1e6}


def queue_part(folder: Path, sink: digest.Sink, pg: Postgres, n: int, workers: list[int], at: datetime,
               days: int, batch: int) -> list[str]:
    run = folder / "queue"
    run.mkdir()
    config = digest.write_config(run)
    with open(config, "a", encoding="utf-8") as f:
        f.write(f"\n[queue]\nbatch_size = {batch}\n")
    base = pg.create()
    started = time.perf_counter()
    digest.seed(config, pg.url_of(base), n, at, days)
    print(f"  seeded {n:,} readers on PostgreSQL in {time.perf_counter() - started:.0f} s", flush=True)
    results: list[tuple[str, dict]] = []
    name = pg.create(template=base)
    r = in_process(run, sink, config, pg.url_of(name), pg.url_of(name), at)
    r["wall"] = r["seconds"]
    pg.drop(name)
    results.append(("in-process (one process, 2 connections)", r))
    print(f"  in-process: {n / r['edition_seconds']:,.0f} msg/s; {r['report']}; {r['load_before']}", flush=True)
    for w in workers:
        name = pg.create(template=base)
        q = queued(run, sink, config, pg.url_of(name), at, w, n)
        pg.drop(name)
        results.append((f"[queue], {w} worker{'s' if w > 1 else ''} × 2 threads", q))
        print(f"  {w} workers: {n / q['edition_seconds']:,.0f} msg/s (edition row), {n / q['wall']:,.0f} msg/s "
              f"(from the command); producer {q['produced']:.1f} s: {q['producer_out']}; {q['load_before']}", flush=True)
    pg.drop(base)
    costs = broker_costs(5000, 10_000)
    ref = results[0][1]
    ref_us = ref["edition_seconds"] / n * 1e6
    table = [f"\nPostgreSQL, {n:,} readers in 20 segments, batch_size {batch}, mail rate 100,000/s (Redis token bucket "
             "on the queue path), to smtp-sink",
             "| sender | edition created → done | msg/s | µs per message | overhead vs in-process | from `digest send` "
             "to done (producer exits after) | CPU per message (Gazette processes) | peak RSS per process | deliveries "
             "rows | smtp-sink got | load before → after |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, r in results:
        us = r["edition_seconds"] / n * 1e6
        table.append(f"| {label} | {r['edition_seconds']:.1f} s | {n / r['edition_seconds']:,.0f} | {us:,.0f} µs | "
                     f"{(us / ref_us - 1) * 100:+.1f} % | {r['wall']:.1f} s ({r.get('produced', 0):.1f} s) | "
                     f"{r['cpu'] / n * 1e6:,.0f} µs" + (f" ({r['producer_cpu'] / n * 1e6:,.0f} producer, "
                                                         f"{r['worker_cpu'] / n * 1e6:,.0f} workers)"
                                                         if "worker_cpu" in r else "") + f" | {r['rss_mb']:.0f} MB | "
                     f"{', '.join(f'{k} {v:,}' for k, v in r['rows'].items())} ({r['distinct_sent']:,} subscribers) | "
                     f"{r['sink']:,} | {r['load_before']} → {r['load_after']} |")
    table.append(f"\nbroker and Redis, measured here ({costs['load']}): RabbitMQ takes {costs['publish']:,.0f} batch "
                 f"tasks/s published (persistent) and gives {costs['consume']:,.0f}/s to one consumer (prefetch 1, each "
                 f"acknowledged); one Redis token-bucket call (TokenBucket.reserve) costs {costs['bucket_us']:.0f} µs "
                 f"round trip from one client; server CPU (an upper bound: others use these servers too): RabbitMQ "
                 f"{costs['rabbit_cpu_us']:,.0f} µs per task published and consumed, Redis {costs['redis_cpu_us']:.0f} µs "
                 "per token-bucket call")
    out = ["\n".join(table)]
    print(out[0], flush=True)
    out.append(json.dumps({"msg_s": {label: n / r["edition_seconds"] for label, r in results},
                           "producer_readers_s": {label: n / r["produced"] for label, r in results if "produced" in r},
                           "cpu_us": {label: {k: r[k] / n * 1e6 for k in ("cpu", "producer_cpu", "worker_cpu") if k in r}
                                      for label, r in results},
                           "costs": costs, "batch": batch}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="memory,queue")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queue-readers", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30, help="days of older articles in the store")
    parser.add_argument("--postgres", default=os.environ.get("GAZETTE_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--limit", type=float, default=0, help="stop each in-process send after this many seconds "
                        "(0: never), reporting what it sent by then")
    args = parser.parse_args()
    parts = args.part.split(",")
    if not Path(digest.SINK).exists():
        parser.error(f"{digest.SINK} is missing (Debian: apt-get install -y postfix)")
    if {"queue", "costs"} & set(parts) and shutil.which("rabbitmqctl") is None:
        parser.error("rabbitmqctl is missing: the queue part needs RabbitMQ on 127.0.0.1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="gazette-scale-bench-"))
    sink, pg = None, Postgres(args.postgres)
    try:
        print(digest.machine(), flush=True)
        at = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
        sink = digest.Sink(folder)
        out = []
        if "memory" in parts:
            out += memory_part(folder, sink, args.stores.split(","), [int(s) for s in args.sizes.split(",")], pg, at,
                               args.days, args.limit)
        if "costs" in parts:
            costs = broker_costs(5000, 10_000)
            out.append(json.dumps(costs))
        if "queue" in parts:
            out += queue_part(folder, sink, pg, args.queue_readers, [int(w) for w in args.workers.split(",")], at,
                              args.days, args.batch_size)
        print("\n\n".join(["# results", *out]))
        print(f"goals: peak RSS <= {GOALS['rss_mb']} MB, µs per message flat, queue overhead at 1 worker <= "
              f"{GOALS['overhead']:.0%}; sources {digest.source_digest()} at the end")
    finally:
        if sink is not None:
            sink.stop()
        pg.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""View beacon benchmark: wrk sending `POST /v/{id}` over 1,000 articles, against the same server's no-op route.

    .venv/bin/python bench/views.py [--duration 10] [--threads 2] [--connections 50] [--rounds 3] [--profile]

In a temporary folder: a configuration (SQLite, `dedupe` left at 30m), `gazette db upgrade`, 1,000 articles from a JSON Lines source through
`gazette ingest`, then `gazette serve` on a free port. wrk (script `bench/views.lua`) then loads, in turn and
with the same threads, connections and duration:
  - the no-op route `GET /livez` (the baseline), and
  - beacons `POST /v/{id}` (what `navigator.sendBeacon` sends), the id drawn from a Zipf-like distribution
    (weight 1/rank^s, s = 1.0) over the 1,000 ids. Every request is its own reader: a distinct address in
    X-Forwarded-For (trusted from 127.0.0.1, as from a reverse proxy) with one of 100 browser User-Agents
    (real readers share a few agents), so that every beacon is a new visitor and should count.
Reports beacon requests/s as a share of /livez requests/s (goal >= 70 %), with every response checked (a 204
for each beacon, a 200 for each /livez). Then stops the server with SIGTERM (it writes its buffered counts on
the way out) and compares the stored total, `SUM(views)` of `article_views`, with the 204s wrk received: they
must be equal. Exit status 1 when a response was wrong or the totals differ.

`--profile` adds a py-spy recording of the server during an extra beacon run (`.venv/bin/pip install py-spy`).
Nothing leaves 127.0.0.1; every process started here is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "views.lua"
VENV_BIN = Path(sys.executable).parent
GOAL = 0.70
KST = timezone(timedelta(hours=9))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

CONFIG = """
[site]
name = "한빛일보"
base_url = "http://127.0.0.1:{port}"

[database]
url = "sqlite:///{folder}/gazette.db"

[mail]
url = "maildir:///{folder}/outbox"
from = "한빛일보 <news@example.com>"
postal_address = "한빛시 중앙로 1"

[secrets]
signing_key = "bench-signing-key-0123456789"

[views]
# Every request comes from 127.0.0.1: the per-IP cap (20 counted views of an article per IP per day) would stop
# counting after a few hundred requests. Dedupe stays at its default, 30 minutes per visitor and article.
per_ip_cap = 1000000
dedupe = "30m"

[[categories]]
slug = "politics"
name = "정치"

[[categories]]
slug = "economy"
name = "경제"

[[sources]]
name = "cms"
kind = "jsonl"
path = "{folder}/articles.jsonl"
interval = "1d"
category_map = {{ "정치" = "politics", "경제" = "economy" }}
"""


# --- processes ----------------------------------------------------------------------------------------------

class Server:
    """`gazette serve` in its own process group, its log in the folder; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, config: Path, folder: Path, port: int) -> None:
        self.port = port
        self.log_path = folder / "serve.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(VENV_BIN / "gazette"), "--config", str(config), "serve", "--port",
                                         str(port)], stdout=self._log, stderr=subprocess.STDOUT, cwd=folder,
                                        start_new_session=True)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gazette serve exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gazette serve did not answer /healthz within {timeout:g} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (a graceful stop: buffered views are written), then SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# --- data ---------------------------------------------------------------------------------------------------

def write_articles(path: Path, count: int) -> None:
    """`count` articles published over the last few days, in the CMS's JSON Lines shape (docs/sources.md)."""
    now = datetime.now(KST).replace(microsecond=0)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            category = "정치" if i % 2 else "경제"
            out.write(json.dumps({
                "id": f"bench-{i}",
                "url": f"https://news.example.com/news/articleView.html?idxno={100000 + i}",
                "title": f"{category} 기사 {i}: 시의회 예산안 심사 {i % 37}일째",
                "category": category,
                "published_at": (now - timedelta(minutes=4 * i + 1)).isoformat(),
                "summary": f"한빛시의회가 내년도 예산안 심사를 이어갔다. 벤치마크 기사 {i}.",
            }, ensure_ascii=False) + "\n")


def zipf_draws(ids: list[str], count: int, exponent: float, seed: int = 20261125) -> list[str]:
    """`count` ids drawn with weight 1/rank^exponent (rank 1 the most viewed), ranks shuffled over the ids."""
    rng = random.Random(seed)
    ranked = sorted(ids)
    rng.shuffle(ranked)
    weights = [1 / rank ** exponent for rank in range(1, len(ranked) + 1)]
    return rng.choices(ranked, weights=weights, k=count)


def write_lua_ids(path: Path, draws: list[str]) -> None:
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", d) for d in set(draws)), "ids must be URL-safe as they are"
    path.write_text("return {\n" + "".join(f'"{d}",\n' for d in draws) + "}\n", encoding="utf-8")


# --- wrk ----------------------------------------------------------------------------------------------------

def cpu_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wrk(mode: str, seconds: int, run_tag: str, ids_file: Path, server: Server, args: argparse.Namespace) -> dict:
    """One wrk run: `seconds` measured, plus 1 s of tail (/livez) so that no beacon is cut off when wrk stops."""
    command = ["wrk", "--threads", str(args.threads), "--connections", str(args.connections),
               "--duration", f"{seconds + 1}s", "--timeout", "10s", "--latency", "--script", str(LUA),
               f"http://127.0.0.1:{server.port}", "--", mode, str(ids_file), str(seconds), run_tag]
    busy, kids, mine, served = cpu_busy(), children_cpu(), self_cpu(), server.cpu_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        time.sleep(seconds)  # the window ends about now (wrk starts it once its threads are set up)
        served_window = server.cpu_seconds() - served
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    busy, kids = cpu_busy() - busy, children_cpu() - kids
    mine, served = self_cpu() - mine, server.cpu_seconds() - served
    found = re.search(r"^views-bench (.*)$", out, re.M)
    if process.returncode != 0 or not found:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{out}{err}")
    counts = dict(part.split("=", 1) for part in found.group(1).split())
    socket_errors = re.search(r"Socket errors: (.*)", out)
    latency = {p: v for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    return {
        "mode": mode,
        "rate": int(counts["ok_window"]) / seconds,  # expected responses within the window, per second
        "wrk_rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # over window + tail
        "ok_window": int(counts["ok_window"]), "ok_total": int(counts["ok_total"]), "tail": int(counts["tail"]),
        "bad": int(counts["bad"]), "bad_statuses": counts["bad_statuses"],
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
        "p50": latency.get("50", "?"), "p99": latency.get("99", "?"),
        "server_cpu": served, "wrk_cpu": kids,
        "foreign_cpu": max(0.0, busy - served - kids - mine), "seconds": seconds + 1,
        # the server's CPU time per response within the window: less sensitive than req/s to other processes
        "cpu_us": served_window / max(1, int(counts["ok_window"])) * 1e6,
    }


def show(result: dict) -> str:
    wrong = f", {result['bad']} WRONG ({result['bad_statuses']})" if result["bad"] else ""
    return (f"{result['rate']:8.0f} req/s (wrk's own figure over window + tail: {result['wrk_rate']:.0f}), "
            f"p50 {result['p50']}, p99 {result['p99']}, server CPU {result['server_cpu'] / result['seconds']:.2f} "
            f"cores ({result['cpu_us']:.0f} µs per response in the window), "
            f"wrk {result['wrk_cpu'] / result['seconds']:.2f}, other processes "
            f"{result['foreign_cpu'] / result['seconds']:.2f}; socket errors: {result['socket_errors']}{wrong}")


def profile(server: Server, ids_file: Path, folder: Path, args: argparse.Namespace) -> tuple[dict, str]:
    """py-spy samples of the server during a beacon run: where its time goes, by function."""
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if py_spy is None:
        return {}, "py-spy is not installed (.venv/bin/pip install py-spy)"
    raw = folder / "profile.txt"
    seconds = max(3, args.duration - 2)
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(server.process.pid), "--duration", str(seconds),
                                 "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        result = wrk("beacon", args.duration, "p", ids_file, server, args)
        _, err = recorder.communicate(timeout=60)
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGKILL)
            recorder.wait(10)
    if not raw.exists():
        return result, f"py-spy recorded nothing: {err.decode(errors='replace').strip()[-300:]}"
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        frames = [re.sub(r" \((?:.*/)?(?:site-packages/)?([^/]+):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        total += n
        leaf[frames[-1]] += n
        by_file[frames[-1].rpartition(" (")[2].rstrip(")")] += n
        for frame in set(frames):
            if frame.endswith(("(views.py)", "(web.py)")):  # Gazette's own code on this path
                inclusive[frame] += n
    if not total:
        return result, "py-spy recorded no samples"
    lines = [f"py-spy: {total} samples of busy threads over {seconds} s at 200 Hz (idle ones left out)"]
    lines.append("  self time by function (the frame on top of the stack):")
    lines += [f"    {count / total * 100:5.1f} %  {frame}" for frame, count in leaf.most_common(args.top)]
    lines.append("  self time by file:")
    lines += [f"    {count / total * 100:5.1f} %  {name}" for name, count in by_file.most_common(8)]
    lines.append("  Gazette's frames, inclusive (anywhere in the stack):")
    lines += [f"    {count / total * 100:5.1f} %  {frame}" for frame, count in inclusive.most_common(8)]
    return result, "\n".join(lines)


# --- report -------------------------------------------------------------------------------------------------

def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 ** 2:.0f} GiB"

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def importable(name: str) -> str:
        return "importable" if importlib.util.find_spec(name) else "not importable"

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(git + ["log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "feeds", "newsletter", "service.py"],
                           capture_output=True, text=True).stdout.strip()
    return (f"machine: {model}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}\n"
            f"python: {platform.python_implementation()} {platform.python_version()}; uvicorn {version('uvicorn')} "
            f"(uvloop {version('uvloop')}, {importable('uvloop')}; httptools {version('httptools')}, "
            f"{importable('httptools')}); starlette {version('starlette')}; crawlerdetect {version('crawlerdetect')}; "
            f"wrk {wrk_version}\n"
            f"code: {head or '?'}{' (with uncommitted changes to the app)' if dirty else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per wrk run (+1 s of tail)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of /livez then beacons; best of each")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of each route before the rounds (0: none)")
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=100_000, help="precomputed Zipf-like draws of article ids")
    parser.add_argument("--exponent", type=float, default=1.0, help="Zipf exponent s: weight 1/rank^s")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during an extra beacon run")
    parser.add_argument("--top", type=int, default=15, help="functions listed by --profile")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install -y wrk)")

    from crawlerdetect import CrawlerDetect  # the server's own list: the User-Agents sent must not be robots

    sample_ua = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.0.0 Safari/537.36 r1t2n34567")
    assert not CrawlerDetect().isCrawler(sample_ua), "the benchmark's User-Agent looks like a crawler"

    print(machine())
    print(f"wrk: {args.threads} threads, {args.connections} connections, {args.warmup} s warm-up per route, then "
          f"{args.rounds} round(s) of {args.duration} s /livez + {args.duration} s beacons (each +1 s of /livez "
          f"tail); {args.articles} articles, {args.draws} Zipf draws, s = {args.exponent:g}")
    with tempfile.TemporaryDirectory(prefix="gazette-views-bench-") as tmp:
        folder = Path(tmp)
        port = free_port()
        config = folder / "gazette.toml"
        config.write_text(CONFIG.format(folder=folder, port=port), encoding="utf-8")
        gazette = str(VENV_BIN / "gazette")
        run([gazette, "--config", str(config), "db", "upgrade"], folder)
        write_articles(folder / "articles.jsonl", args.articles)
        print("ingest:", run([gazette, "--config", str(config), "ingest"], folder).strip())
        with sqlite3.connect(folder / "gazette.db") as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM articles")]
        if len(ids) != args.articles:
            raise SystemExit(f"expected {args.articles} articles after ingest, found {len(ids)}")
        draws = zipf_draws(ids, args.draws, args.exponent)
        ids_file = folder / "ids.lua"
        write_lua_ids(ids_file, draws)
        spread = Counter(draws).most_common()
        print(f"draws: the top article {spread[0][1] / len(draws) * 100:.1f} %, the top 10 "
              f"{sum(c for _, c in spread[:10]) / len(draws) * 100:.1f} %, {len(spread)} distinct articles drawn")

        server = Server(config, folder, port)
        runs: list[dict] = []
        profile_text = ""
        try:
            server.wait_ready()
            if args.warmup:
                runs.append(wrk("livez", args.warmup, "w", ids_file, server, args))
                runs.append(wrk("beacon", args.warmup, "w", ids_file, server, args))
            measured = []
            for r in range(args.rounds):
                for mode in ("livez", "beacon"):
                    result = wrk(mode, args.duration, str(r), ids_file, server, args)
                    runs.append(result)
                    measured.append(result)
                    print(f"round {r + 1} {'GET /livez  ' if mode == 'livez' else 'POST /v/{id}'}: {show(result)}",
                          flush=True)
            if args.profile:
                result, profile_text = profile(server, ids_file, folder, args)
                if result:
                    runs.append(result)
                    print(f"profiled     POST /v/{{id}}: {show(result)}")
        finally:
            status = server.stop()
        print(f"server stopped with SIGTERM, exit status {status}")

        with sqlite3.connect(folder / "gazette.db") as conn:
            stored, buckets, articles = conn.execute(
                "SELECT COALESCE(SUM(views), 0), COUNT(*), COUNT(DISTINCT article_id) FROM article_views").fetchone()

    livez = max((r for r in measured if r["mode"] == "livez"), key=lambda r: r["rate"])
    beacon = max((r for r in measured if r["mode"] == "beacon"), key=lambda r: r["rate"])
    ratio = beacon["rate"] / livez["rate"]
    print(f"best GET /livez (no-op):  {livez['rate']:8.0f} req/s")
    print(f"best POST /v/{{id}}:        {beacon['rate']:8.0f} req/s  = {ratio * 100:.1f} % of /livez "
          f"(goal >= {GOAL * 100:.0f} %: {'met' if ratio >= GOAL else 'NOT met'})")
    cpu_livez = min(r["cpu_us"] for r in measured if r["mode"] == "livez")
    cpu_beacon = min(r["cpu_us"] for r in measured if r["mode"] == "beacon")
    print(f"server CPU per response (lowest): /livez {cpu_livez:.0f} µs, beacon {cpu_beacon:.0f} µs -> a beacon "
          f"costs {cpu_beacon / cpu_livez:.2f}x a no-op request ({cpu_livez / cpu_beacon * 100:.1f} % of the rate "
          f"on an otherwise idle core)")
    if len(measured) > 2:
        ratios = [b["rate"] / a["rate"] for a, b in zip(measured[::2], measured[1::2])]
        print("per round:                " + ", ".join(f"{x * 100:.1f} %" for x in ratios))
    wrong = sum(r["bad"] for r in runs)
    counted = sum(r["ok_total"] for r in runs if r["mode"] == "beacon")
    print(f"responses: {sum(r['ok_total'] + r['tail'] for r in runs)} checked, {wrong} wrong")
    print(f"beacons answered 204 (all runs, warm-up included): {counted}")
    print(f"stored SUM(views):                                 {stored}  ({buckets} hourly buckets, "
          f"{articles} articles) -> {'equal' if stored == counted else 'DIFFERENT'}")
    if profile_text:
        print(profile_text)
    failed = wrong > 0 or stored != counted
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

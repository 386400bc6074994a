"""The CLI as a user runs it: the demo's whole thin path, in a scratch folder, through the real script."""

from __future__ import annotations

import mailbox
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, gazette_command, wait_healthy, write_config


def run(args: list[str], cwd: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(gazette_command() + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo as `make run` lays it out: examples/, var/demo/, gazette.toml."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "gazette.toml").symlink_to("examples/demo.toml")
    subprocess.run([sys.executable, "examples/build_demo.py", "var/demo"], cwd=tmp_path, check=True,
                   capture_output=True)
    return tmp_path


def test_demo_thin_path(demo: Path) -> None:
    first = run(["db", "upgrade"], demo).stdout.strip()
    assert first.startswith("database at revision ") and first.endswith("(was empty)")
    head = first.split()[3]
    assert run(["db", "upgrade"], demo).stdout.strip() == f"database at revision {head}"  # again: nothing to do
    assert run(["subscribers", "import", "examples/subscribers.csv", "--confirmed"], demo).stdout.startswith("2 added")

    lines = run(["ingest"], demo).stdout.splitlines()
    assert lines == ["hanbit-rss: new (18 new, 0 updated, 0 unchanged)",
                     "hanbit-economy-atom: new (9 new, 0 updated, 0 unchanged)",
                     "hanbit-cms-culture: new (9 new, 0 updated, 0 unchanged)"]
    assert run(["ingest", "hanbit-rss"], demo).stdout.strip() == \
        "hanbit-rss: unchanged (0 new, 0 updated, 0 unchanged); same bytes as last time"

    out = demo / "static"
    assert "wrote 62 files" in run(["feeds", "build", "--out", str(out)], demo).stdout  # (10 × 3 + sitemap) × 2

    port = free_port()
    with subprocess.Popen(gazette_command() + ["serve", "--port", str(port)], cwd=demo, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as server:
        try:
            wait_healthy(port, server)
            for slug in ("all", "popular", "politics", "economy", "society", "culture", "culture/popular"):
                for fmt in ("rss", "atom", "json"):
                    served = httpx.get(f"http://127.0.0.1:{port}/feeds/{slug}.{fmt}")
                    assert served.status_code == 200
                    assert served.content == (out / "feeds" / f"{slug}.{fmt}").read_bytes(), f"{slug}.{fmt} differs"
        finally:
            server.terminate()
            server.wait(timeout=20)

    report = run(["digest", "send", "daily"], demo).stdout
    assert "2 recipients, sent 2" in report
    box = mailbox.Maildir(str(demo / "var" / "outbox"), create=False)
    assert len(box) == 2
    assert "nothing new for 2" in run(["digest", "send", "daily"], demo).stdout
    assert len(box) == 2


def test_ingest_goes_on_past_a_broken_source(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<html>this is not a feed</html>")
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}", extra=f"""
        [[sources]]
        name = "broken"
        kind = "feed"
        path = "{broken}"
        category = "politics"

        [[sources]]
        name = "missing"
        kind = "jsonl"
        path = "{tmp_path / 'absent.jsonl'}"
        category = "politics"

        [[sources]]
        name = "good"
        kind = "feed"
        path = "{ROOT / 'tests' / 'data' / 'sources' / 'atom_basic.atom'}"
        category = "economy"
        """)
    run(["--config", str(config), "db", "upgrade"], tmp_path)
    result = run(["--config", str(config), "ingest"], tmp_path, expect=1)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("broken: error: not a feed: no RSS, Atom or JSON Feed document found "
                               "(1 failure in a row, next check ")
    assert lines[0].endswith("+09:00)")  # shown in the site's time zone
    assert lines[1].startswith(f"missing: error: {tmp_path / 'absent.jsonl'}: no such file (1 failure in a row")
    assert lines[2] == "good: new (1 new, 0 updated, 0 unchanged)"
    assert len(lines) == 3


@pytest.mark.parametrize("args, expect, message", [
    pytest.param(["ingest", "nope"], 2, "unknown source(s): nope", id="unknown-source"),
    pytest.param(["digest", "send", "monthly"], 2, "unknown edition 'monthly'", id="unknown-edition"),
    pytest.param(["digest", "send", "daily", "--at", "tomorrow"], 2, "not an ISO time", id="bad-at"),
    pytest.param(["subscribers", "add", "not-an-address"], 1, "not a valid address", id="bad-address"),
    pytest.param(["subscribers", "add", "a@example.com", "--categories", "sports"], 2, "unknown categories",
                 id="bad-category"),
])
def test_bad_usage_is_a_clear_error(demo: Path, args: list[str], expect: int, message: str) -> None:
    run(["db", "upgrade"], demo)
    result = run(args, demo, expect=expect)
    assert message in result.stderr


def test_commands_refuse_an_unmigrated_database(demo: Path) -> None:
    assert "gazette db upgrade" in run(["ingest"], demo, expect=1).stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = run(["--help"], tmp_path).stdout
    for command in ("serve", "check", "db", "ingest", "feeds", "digest", "subscribers"):
        assert f"  {command} " in out


def test_views_import(demo: Path) -> None:
    run(["db", "upgrade"], demo)
    run(["ingest"], demo)
    csv_file = demo / "views.csv"
    csv_file.write_text("url_or_id,views,from,to\n"
                        "https://hanbit-ilbo.example/news/articleView.html?idxno=1001&utm_source=x,120,2026-11-24 09:00,\n"
                        "https://hanbit-ilbo.example/news/articleView.html?idxno=1002,30,,\n"
                        "https://hanbit-ilbo.example/nowhere,5,,\n"
                        "https://hanbit-ilbo.example/news/articleView.html?idxno=1003,many,,\n", encoding="utf-8")
    result = run(["views", "import", str(csv_file)], demo, expect=1)
    assert result.stdout.splitlines() == [
        "150 views added to 2 articles from 2 rows; 2 rows skipped",
        "line 4: no article 'https://hanbit-ilbo.example/nowhere'",
        "line 5: views 'many' is not a whole number",
    ]

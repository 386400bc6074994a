"""The CLI as a user runs it: the demo's whole thin path, in a scratch folder.

Commands run in-process (`run_gazette`: click's runner over `service.main`, the console script's entry point) with
the same arguments, output and exit codes; `test_the_installed_script_runs` starts the real script once. `gazette
serve` itself is started as a process by the tests whose point is serving (test_logs, test_schedule, test_views).
"""

from __future__ import annotations

import mailbox
import runpy
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, CommandResult, InProcessClient, gazette_command, migrated_sqlite_url, run_gazette, \
    sqlite_template, wait_until, write_config


def run(args: list[str], cwd: Path, expect: int = 0) -> CommandResult:
    return run_gazette(args, cwd=cwd, expect=expect)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo as `make run` lays it out: examples/, var/demo/, gazette.toml."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "gazette.toml").symlink_to("examples/demo.toml")
    runpy.run_path(str(tmp_path / "examples" / "build_demo.py"), run_name="build_demo")["main"](
        tmp_path / "var" / "demo")
    return tmp_path


@pytest.fixture
def upgraded_demo(demo: Path) -> Path:
    """The demo after `gazette db upgrade` (its database a copy of the migrated template: the upgrade itself is
    `test_demo_thin_path`'s)."""
    shutil.copyfile(sqlite_template(), demo / "var" / "gazette.db")
    return demo


def test_demo_thin_path(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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

    # What `gazette serve` answers, in-process: the same app over the same settings and database.
    import service
    from newsletter.settings import load_settings

    monkeypatch.chdir(demo)
    services = service.Components(load_settings(demo / "gazette.toml", {}))
    services.prepare_database(migrate=False)
    with InProcessClient(service.create_app(services), base_url="http://127.0.0.1:8000") as client:
        for slug in ("all", "popular", "politics", "economy", "society", "culture", "culture/popular"):
            for fmt in ("rss", "atom", "json"):
                served = client.get(f"/feeds/{slug}.{fmt}")
                assert served.status_code == 200
                assert served.content == (out / "feeds" / f"{slug}.{fmt}").read_bytes(), f"{slug}.{fmt} differs"
    services.close()

    report = run(["digest", "send", "daily"], demo).stdout
    assert "2 recipients, sent 2" in report
    box = mailbox.Maildir(str(demo / "var" / "outbox"), create=False)
    assert len(box) == 2
    # A send without --at is the run of its second; a user's next command (a new process) comes in a later one.
    sent_in = int(time.time())
    wait_until(lambda: int(time.time()) > sent_in, 5)
    assert "nothing new for 2" in run(["digest", "send", "daily"], demo).stdout
    assert len(box) == 2


def test_ingest_goes_on_past_a_broken_source(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<html>this is not a feed</html>")
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra=f"""
        [fetch]
        parse_processes = 0  # parsed in the fetching thread: the parse processes are test_demo_thin_path's

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
def test_bad_usage_is_a_clear_error(upgraded_demo: Path, args: list[str], expect: int, message: str) -> None:
    result = run(args, upgraded_demo, expect=expect)
    assert message in result.stderr


def test_commands_refuse_an_unmigrated_database(demo: Path) -> None:
    assert "gazette db upgrade" in run(["ingest"], demo, expect=1).stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = run(["--help"], tmp_path).stdout
    for command in ("serve", "check", "db", "ingest", "feeds", "digest", "subscribers"):
        assert f"  {command} " in out


def test_the_installed_script_runs(tmp_path: Path) -> None:
    """The console script as installed (a process): the in-process runs above go through the same `service.main`."""
    result = subprocess.run(gazette_command() + ["--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == run(["--help"], tmp_path).stdout


def test_views_import(upgraded_demo: Path) -> None:
    demo = upgraded_demo
    run_gazette(["ingest"], cwd=demo, env={"GAZETTE_FETCH_PARSE_PROCESSES": "0"}, expect=0)  # no parse processes: quicker
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

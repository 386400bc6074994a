"""Logging: the JSON and text lines, the level rule, the commands' log lines on stderr (run in-process by
`run_gazette`, through the console script's `service.main`), and a real `gazette serve` process writing one format
for app and uvicorn."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from feeds.logs import JsonFormatter, TextFormatter, configure_logging, hold_logging, resolve_level
from tests.conftest import NOW, CommandResult, free_port, gazette_command, migrated_sqlite_url, run_gazette, \
    wait_healthy, write_config

SEOUL = ZoneInfo("Asia/Seoul")


def record(message: str, *args: object, level: int = logging.WARNING, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("잘못된 값")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("feeds.ingest", level, __file__, 1, message, args, exc_info)
    made.created = NOW.timestamp() + 0.25  # 09:00:00.250 KST
    return made


@pytest.mark.parametrize("made, expected", [
    pytest.param(record("source %s failed", "한빛 정치"),
                 {"time": "2026-11-25T09:00:00.250+09:00", "level": "WARNING", "logger": "feeds.ingest",
                  "message": "source 한빛 정치 failed"}, id="korean-args"),
    pytest.param(record("line one\nline two", level=logging.INFO),
                 {"time": "2026-11-25T09:00:00.250+09:00", "level": "INFO", "logger": "feeds.ingest",
                  "message": "line one\nline two"}, id="newline-stays-in-one-line"),
])
def test_json_line(made: logging.LogRecord, expected: dict[str, str]) -> None:
    line = JsonFormatter(SEOUL).format(made)
    assert "\n" not in line
    assert json.loads(line) == expected
    assert "한빛" in line or "한빛" not in expected["message"]  # written as is, not \uXXXX


def test_json_line_carries_the_traceback_as_a_string() -> None:
    entry = json.loads(JsonFormatter(SEOUL).format(record("source %s: unexpected error", "한빛", exc=True)))
    assert entry["message"] == "source 한빛: unexpected error"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert entry["exc_info"].endswith("ValueError: 잘못된 값")


def test_json_time_follows_the_site_zone() -> None:
    entry = json.loads(JsonFormatter(ZoneInfo("UTC")).format(record("x")))
    assert datetime.fromisoformat(entry["time"]) == NOW.replace(microsecond=250000)
    assert entry["time"].endswith("+00:00")


def test_text_line() -> None:
    assert TextFormatter(SEOUL).format(record("source %s failed", "한빛")) == \
        "2026-11-25T09:00:00.250+09:00 WARNING feeds.ingest: source 한빛 failed"


@pytest.mark.parametrize("configured, verbose, default, expected", [
    pytest.param(None, False, logging.WARNING, logging.WARNING, id="command-default"),
    pytest.param(None, False, logging.INFO, logging.INFO, id="serve-default"),
    pytest.param(None, True, logging.WARNING, logging.INFO, id="verbose-means-info"),
    pytest.param("ERROR", False, logging.INFO, logging.ERROR, id="settings-beat-serve-default"),
    pytest.param("ERROR", True, logging.WARNING, logging.INFO, id="verbose-beats-settings"),
    pytest.param("DEBUG", True, logging.WARNING, logging.DEBUG, id="verbose-never-hides-debug"),
])
def test_resolve_level(configured: str | None, verbose: bool, default: int, expected: int) -> None:
    assert resolve_level(configured, verbose=verbose, default=default) == expected


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging changes the root logger and uvicorn's: put them back for the next test."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [(logging.getLogger(n), logging.getLogger(n).handlers[:], logging.getLogger(n).level,
              logging.getLogger(n).propagate) for n in names]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_held_records_pass_the_configured_level_and_uvicorn_shares_the_handler(root_logging: None) -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's dictConfig
    hold_logging()
    logging.getLogger("feeds.settings").debug("GAZETTE_FOO is not a setting: ignored")  # before the level is known
    out = io.StringIO()
    configure_logging(logging.INFO, "json", SEOUL, stream=out)
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/", "1.1", 200)
    logging.getLogger("gazette").debug("not at INFO")
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("uvicorn.error", "Uvicorn running on http://127.0.0.1:8000"),
        ("uvicorn.access", '127.0.0.1:5 - "GET / HTTP/1.1" 200'),
    ]

    hold_logging()
    logging.getLogger("feeds.settings").debug("GAZETTE_FOO is not a setting: ignored")
    out = io.StringIO()
    configure_logging(logging.DEBUG, "json", SEOUL, stream=out)
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == \
        ["GAZETTE_FOO is not a setting: ignored"]


# --- the commands -------------------------------------------------------------------------------------

def environment(**extra: str) -> dict[str, str]:
    """This process's environment without GAZETTE_* (the suite's own may be set), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GAZETTE_")}, **extra}


@pytest.fixture
def korean_failing_source(tmp_path: Path) -> Path:
    """A configuration whose one source cannot be read, over a migrated database."""
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra=f"""
        [fetch]
        parse_processes = 0

        [[sources]]
        name = "한빛 정치"
        kind = "jsonl"
        path = "{tmp_path / '없는 파일.jsonl'}"
        category = "politics"
        """)
    return config


def ingest(config: Path, **env: str) -> CommandResult:
    return run_gazette(["--config", str(config), "ingest"], cwd=config.parent, env=env)


def test_ingest_writes_json_lines_with_korean_intact(korean_failing_source: Path) -> None:
    result = ingest(korean_failing_source, GAZETTE_LOG_FORMAT="json", GAZETTE_LOG_LEVEL="INFO")
    assert result.returncode == 1, result.stderr  # the source failed: a run-time failure
    entries = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    failed = [e for e in entries if e["logger"] == "feeds.ingest" and e["level"] == "WARNING"]
    assert len(failed) == 1 and failed[0]["message"].startswith("source 한빛 정치 failed (1 in a row): ")
    assert "없는 파일.jsonl" in failed[0]["message"]
    assert datetime.fromisoformat(failed[0]["time"]).utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]
    assert set(failed[0]) == {"time", "level", "logger", "message"}


@pytest.mark.parametrize("env, has_warning", [
    pytest.param({}, True, id="default-warning"),
    pytest.param({"GAZETTE_LOG_LEVEL": "ERROR"}, False, id="error-hides-warning"),
    pytest.param({"GAZETTE_LOGGING_LEVEL": "error"}, False, id="generic-name-any-case"),
])
def test_level_filters_the_lines(korean_failing_source: Path, env: dict[str, str], has_warning: bool) -> None:
    result = ingest(korean_failing_source, **env)
    assert result.returncode == 1
    assert ("WARNING feeds.ingest: source 한빛 정치 failed" in result.stderr) is has_warning, result.stderr
    assert " INFO " not in result.stderr


def test_check_notes_an_ignored_variable_at_debug_only(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}")
    command = ["--config", str(config), "check"]
    quiet = run_gazette(command, cwd=tmp_path, env={"GAZETTE_TEST_POSTGRES_URL": "postgresql://x/y"})
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    noted = run_gazette(command, cwd=tmp_path, env={
        "GAZETTE_TEST_POSTGRES_URL": "postgresql://x/y", "GAZETTE_LOG_LEVEL": "DEBUG", "GAZETTE_LOG_FORMAT": "json"})
    assert noted.returncode == 0, noted.stderr
    notes = [json.loads(line) for line in noted.stderr.splitlines()]
    assert any(n["logger"] == "feeds.core.config" and n["level"] == "DEBUG"
               and n["message"].startswith("GAZETTE_TEST_POSTGRES_URL is not a setting") for n in notes), notes


@pytest.mark.parametrize("env, key", [
    pytest.param({"GAZETTE_LOG_FORMAT": "xml"}, "logging.format", id="format"),
    pytest.param({"GAZETTE_LOG_LEVEL": "LOUD"}, "logging.level", id="level"),
    pytest.param({"GAZETTE_DATABASE_URLL": "sqlite:///x.db"}, "GAZETTE_DATABASE_URLL", id="typo-in-a-setting"),
])
def test_bad_logging_values_stop_the_start(tmp_path: Path, env: dict[str, str], key: str) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}")
    result = run_gazette(["--config", str(config), "check"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"gazette: configuration error: {key}: "), result.stderr


# --- the real server ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_serve_writes_uvicorn_and_app_lines_in_one_json_format(tmp_path: Path) -> None:
    """A `gazette serve` process: the point is what uvicorn and the app write to the process's output."""
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                          extra='[logging]\nformat = "json"\n')
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port", str(port),
                                                       "--access-log"], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT, env=environment())
    try:
        wait_healthy(port, server)
        assert httpx.get(f"http://127.0.0.1:{port}/feeds/all.rss").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    loggers = {e["logger"] for e in entries}
    assert {"uvicorn.error", "uvicorn.access", "feeds.core.scheduling"} <= loggers, loggers
    assert any(e["logger"] == "uvicorn.access" and "GET /feeds/all.rss" in e["message"] for e in entries)
    assert all(e["level"] in ("INFO", "WARNING") for e in entries)  # serve's default level is INFO

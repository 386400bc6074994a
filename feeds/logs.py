"""Logging for every command and for the web server: one handler on the root logger, writing text or JSON lines.

`configure_logging` runs once the settings are read (`[logging]` level and format, the site's time zone) and
points uvicorn's loggers at the same handler, so one process writes one format. Before that, `hold_logging`
keeps every record: a note written while the settings are read (an ignored GAZETTE_* variable) is then shown or
not by the level those very settings choose.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, tzinfo
from typing import TextIO

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger: message`, the time in ISO 8601 with its offset in the site's time zone (the host's own
    zone is often UTC, and a reader compares log lines with the times the site shows)."""

    def __init__(self, timezone: tzinfo) -> None:
        super().__init__(TEXT_FORMAT)
        self.timezone = timezone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.timezone).isoformat(timespec="milliseconds")


class JsonFormatter(TextFormatter):
    """One JSON object per line: time, level, logger, message, and exc_info (and stack_info) as text when present.

    json.dumps escapes the newlines of a traceback, so one record stays one line; ensure_ascii=False keeps Korean
    readable instead of \\uXXXX."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def resolve_level(configured: str | None, *, verbose: bool, default: int) -> int:
    """The settings' level, else the command's default; `-v` lowers it to INFO (it never hides DEBUG)."""
    level = logging.getLevelNamesMapping()[configured] if configured else default
    return min(level, logging.INFO) if verbose else level


class _Held(logging.Handler):
    """Keeps records until `configure_logging` knows the level and the format."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def hold_logging() -> None:
    """From the start of a command until the settings are read: keep every record."""
    root = logging.getLogger()
    _install(root, _Held())
    root.setLevel(logging.DEBUG)


def configure_logging(level: int, format: str, timezone: tzinfo, stream: TextIO | None = None) -> None:
    """One handler (stderr unless `stream`) on the root logger for the app and uvicorn alike; records held since
    the start pass through it now, if `level` lets them."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(timezone) if format == "json" else TextFormatter(timezone))
    root = logging.getLogger()
    held = _install(root, handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:  # uvicorn's own handlers (from its default dictConfig) would write another format
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for record in held:
        if record.levelno >= level:
            handler.handle(record)


def release_held(level: int = logging.WARNING, timezone: tzinfo | None = None) -> None:
    """When a command ends without having read its settings (a configuration error, `--help`): write what was held
    at `level` in text, so no warning is lost; nothing if logging was configured."""
    if any(isinstance(h, _Held) for h in logging.getLogger().handlers):
        configure_logging(level, "text", timezone or datetime.now().astimezone().tzinfo)  # type: ignore[arg-type]


def _install(root: logging.Logger, handler: logging.Handler) -> list[logging.LogRecord]:
    """Make `handler` the root logger's only handler; return what a replaced `_Held` kept."""
    held: list[logging.LogRecord] = []
    for old in root.handlers[:]:
        if isinstance(old, _Held):
            held += old.records
        root.removeHandler(old)
    root.addHandler(handler)
    return held

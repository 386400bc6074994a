"""The CLI plumbing every command shares, whichever side it belongs to.

`GazetteGroup` maps errors to the exit codes of the contract (0 ok, 1 failure at run time, 2 bad usage or
configuration) with a one-line message; `config_option` accepts `--config` after a command's name too;
`components_of` hands a command the object graph of this invocation, built once by the factory that `service.py`
puts in the root context; the rest formats and reads times and values the same way in every command. Nothing here
knows what the commands do or which side they belong to.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import click

from .errors import ConfigError, GazetteError

FACTORY = "make_components"  # the root context's meta key of the factory: (the --config path or None) -> components


class GazetteGroup(click.Group):
    """Maps configuration and domain errors to the contract's exit codes with a one-line message."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"gazette: configuration error: {exc}", err=True)
            sys.exit(2)
        except GazetteError as exc:
            click.echo(f"gazette: {exc}", err=True)
            sys.exit(1)


def _remember_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.find_root().meta["config"] = value


def config_option(command):  # type: ignore[no-untyped-def]
    """`--config` after the command name too (`gazette check --config x.toml`), as well as before it."""
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
                        is_eager=True, callback=_remember_config,
                        help="Configuration file (default: $GAZETTE_CONFIG, else ./gazette.toml).")(command)


def components_of(ctx: click.Context) -> Any:
    """The components of this invocation (settings, stores, services), built once by the factory the group put in
    the root context's meta under `FACTORY`, from `--config` wherever it was given (this module never imports the
    wiring). They are closed when the command ends, however it ends (sys.exit included): a parse pool left to the
    interpreter's exit hooks could print a traceback from a pipe already closed."""
    root = ctx.find_root()
    if "components" not in root.meta:
        components = root.meta["components"] = root.meta[FACTORY](root.meta.get("config") or root.params.get("config"))
        root.call_on_close(components.close)
    return root.meta["components"]


def parse_at(text: str, timezone: tzinfo) -> datetime:
    """An `--at` time: ISO 8601; without a zone, in `timezone` (the site's)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f'"{text}" is not an ISO time such as 2026-11-25T07:00', param_hint="--at") from None
    return value.replace(tzinfo=timezone) if value.tzinfo is None else value


def local_time(moment: datetime | None, timezone: tzinfo, *, never: str = "never") -> str:
    """A stored (UTC) time as a person reads it: in `timezone` (the site's), to the minute, with the zone's name."""
    if moment is None:
        return never
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M %Z")


def duration_text(delta: timedelta) -> str:
    """A duration as the configuration writes it: 10m, 2h, 1d, else seconds."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def redacted(url: str) -> str:
    """`url` with its password, if any, hidden, for printing."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0] and ":" in rest.split("@", 1)[0]:
        user = rest.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{rest.split('@', 1)[1]}"
    return url

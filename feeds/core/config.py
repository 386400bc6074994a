"""Configuration machinery both sides share: reading the TOML file, the GAZETTE_<SECTION>_<KEY> environment overlay,
and the schema helpers each side's settings module builds its sections with.

It knows no section of its own: `feeds.settings` declares the content side's sections and `newsletter.settings` the
audience side's ([mail], [digests]); each passes its schemas here. A schema (`Spec`) maps key -> (type, default);
`REQUIRED` marks a key without a default. Every problem raises `ConfigError` naming the key as the user wrote it
(`sources[2].interval`, `GAZETTE_DATABASE_URL`) and the reason.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED = object()
Spec = Mapping[str, tuple[type | tuple[type, ...], Any]]

ENV_NOT_SETTINGS = frozenset({"GAZETTE_CONFIG"})  # read by config_path, not a key
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "a boolean (true/false)",
               list: "an array", dict: "a table"}


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """--config, else $GAZETTE_CONFIG, else ./gazette.toml."""
    return Path(explicit or environ.get("GAZETTE_CONFIG") or "gazette.toml")


def read_config(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict; ConfigError when it is missing, unreadable or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such configuration file (use --config or $GAZETTE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc


def check_top_level(raw: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse a top-level key (a section, an array of tables) that is not in `known`."""
    for key in raw:
        if key not in known:
            raise ConfigError(key, f"unknown section (known: {', '.join(sorted(known))})")


def apply_environment(raw: dict[str, Any], environ: Mapping[str, str], sections: Mapping[str, Spec], *,
                      file_only: Mapping[str, str] | None = None,
                      aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overlay GAZETTE_<SECTION>_<KEY> variables on the scalar keys of the table `sections`.

    Only names that begin with a known section are settings. Any other GAZETTE_* name (a test's
    GAZETTE_TEST_POSTGRES_URL, another tool's variable) is not ours to refuse: it is ignored with a debug note.
    A known section with an unknown key (GAZETTE_DATABASE_URLL) stays an error, because that is a typo in a real
    setting: ignoring it would run on the file's value while the operator believes the override is in force.
    `file_only` maps the sections the environment cannot set (arrays of tables, tables of tables) to how the file
    writes them (`[[sources]]`, `[digests.*]`); a variable naming one is an error too. `aliases` maps short names
    to the generic ones (GAZETTE_LOG_LEVEL -> GAZETTE_LOGGING_LEVEL); both may be set if they agree.
    """
    file_only = file_only or {}
    aliases = aliases or {}
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for name in sorted(environ):  # sorted: with several mistakes, the same one is reported every time
        if not name.startswith("GAZETTE_") or name in ENV_NOT_SETTINGS:
            continue
        value = environ[name]
        generic = aliases.get(name, name)
        if generic != name and environ.get(generic, value) != value:
            raise ConfigError(name, f"says {value!r} but {generic} says {environ[generic]!r}: set one of them")
        match = _match_override(generic, sections, file_only)
        if match is None:
            log.debug("%s is not a setting (there is no section [%s]): ignored", name,
                      generic[len("GAZETTE_"):].split("_")[0].lower())
            continue
        section, key = match
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(section, "must be a table")
        target[key] = _coerce(name, value, sections[section][key][0])
    return merged


def _match_override(name: str, sections: Mapping[str, Spec], file_only: Mapping[str, str]) -> tuple[str, str] | None:
    """(section, key) of a GAZETTE_<SECTION>_<KEY> name; None when it names no section; ConfigError for a known
    section's unknown key, or a key the environment cannot set."""
    rest = name[len("GAZETTE_"):].lower()
    for section in (*sections, *file_only):
        if not rest.startswith(section + "_"):
            continue
        key = rest[len(section) + 1:]
        if section not in sections:
            raise ConfigError(name, f"{file_only[section]} is set in the configuration file only")
        spec = sections[section]
        if key not in spec:
            raise ConfigError(name, f'unknown key "{key}" of [{section}] (known: {", ".join(spec)})')
        if spec[key][0] in (list, dict):
            raise ConfigError(name, f"{section}.{key} is {_TYPE_NAMES[spec[key][0]]}: set it in the configuration file")
        return section, key
    return None


def _coerce(name: str, value: str, expected: type | tuple[type, ...]) -> Any:
    types = expected if isinstance(expected, tuple) else (expected,)
    if bool in types:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f'"{value}" is not a boolean (true or false)')
    if int in types and float not in types:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(name, f'"{value}" is not a whole number') from None
    if float in types:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(name, f'"{value}" is not a number') from None
    return value


# --- schema helpers ---------------------------------------------------------------------------------

def table(where: str, raw: Any, spec: Spec) -> dict[str, Any]:
    """The table `raw` checked against `spec`: no unknown key, no missing required key, each value of its type;
    the defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a table")
    for key in raw:
        if key not in spec:
            raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(spec)})")
    values: dict[str, Any] = {}
    for key, (kind, default) in spec.items():
        if key not in raw:
            if default is REQUIRED:
                raise ConfigError(f"{where}.{key}", "is required")
            values[key] = default
            continue
        value = raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a `true` where a number belongs is still a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES[k] for k in kinds)
            found = _TYPE_NAMES.get(type(value), type(value).__name__)
            raise ConfigError(f"{where}.{key}", f"must be {names}, not {found}")
        values[key] = value
    return values


def array(name: str, raw: Any) -> list[Any]:
    """The items of an array of tables (`[[name]]`)."""
    if not isinstance(raw, list):
        raise ConfigError(name, f"must be an array of tables ([[{name}]])")
    return raw


def check(key: str, ok: bool, reason: str) -> None:
    if not ok:
        raise ConfigError(key, reason)


def convert(key: str, value: str, fn: Callable[[str], Any]) -> Any:
    """fn(value), its ValueError turned into a ConfigError naming `key`."""
    try:
        return fn(value)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from exc


def is_http_url(value: Any) -> bool:
    """An absolute http(s) URL: a string with the scheme http or https and a host."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_ORIGIN = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?/?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def web_origin(value: Any) -> str:
    """`value` written as a browser writes an Origin header (RFC 6454 §6.2): "scheme://host[:port]", lowercase, the
    default port left out. ValueError for anything else (a path, a query, a user, a wildcard, "null")."""
    found = _ORIGIN.fullmatch(value.lower()) if isinstance(value, str) else None
    if found is None or (found[3] is not None and not 0 < int(found[3]) < 65536):
        raise ValueError(f"{value!r} is not an origin such as \"https://news.example.com\" or \"http://localhost:8080\"")
    scheme, host, port = found.groups()
    return f"{scheme}://{host}" + (f":{int(port)}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def time_zone(key: str, name: str) -> ZoneInfo:
    """The IANA zone `name`; ConfigError naming `key` when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(key, f'"{name}" is not a known time zone such as "Asia/Seoul"') from None


def parse_duration(text: str) -> timedelta:
    """'10m', '1h30m', '7d', '45s' -> timedelta. Raises ValueError on anything else or on zero."""
    compact = text.strip().lower()
    matches = list(_DURATION_RE.finditer(compact))
    if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != compact.replace(" ", ""):
        raise ValueError(f'"{text}" is not a duration such as "30s", "10m", "1h30m" or "7d"')
    seconds = sum(int(m.group(1)) * _DURATION_UNITS[m.group(2)] for m in matches)
    if seconds <= 0:
        raise ValueError(f'"{text}" must be longer than zero')
    return timedelta(seconds=seconds)


def words(key: str, value: str | Mapping[str, Any], languages: Iterable[str]) -> Mapping[str, str]:
    """A text readers see: one string for every language, or a table of them (`{ko = "…", en = "…"}`)."""
    languages = tuple(languages)
    if isinstance(value, str):
        return {language: value.strip() for language in languages} if value.strip() else {}
    unknown = [language for language in value if language not in languages]
    check(f"{key}.{unknown[0] if unknown else ''}", not unknown, f"not a language of the site ({', '.join(languages)})")
    for language, text in value.items():
        check(f"{key}.{language}", isinstance(text, str) and bool(text.strip()), "must be a non-empty string")
    return {language: text.strip() for language, text in value.items()}

"""The exceptions of the content side, under the one tree of `feeds.core.errors`.

    GazetteError
     └── FeedsError          500
          ├── FetchError     a source could not be fetched (network, HTTP status, size, time); 502
          ├── ParseError     a source's bytes are not a usable feed or export; 422
          ├── BadDefinition  a source's definition breaks the `[[sources]]` rule (`.key` names the key); 422
          ├── OriginRefused  a cross-origin request from an origin `[widgets] origins` does not name; 403
          └── StoreError     the article store could not do what was asked; 409
               ├── UnknownName       no such partner, source or article; 404
               ├── InvalidValue      a value the store keeps for itself or cannot hold; 422
               ├── StoreUnavailable  the database does not answer; 503
               └── SchemaNotCurrent  the database's schema is behind the code (`gazette db upgrade`); 503

Each carries the HTTP status it means; `feeds.core.http` maps them, and the CLI maps them to exit codes.
"""

from __future__ import annotations

from .core.errors import GazetteError


class FeedsError(GazetteError):
    """Base of every error raised by the feeds package."""


class FetchError(FeedsError):
    """A source could not be fetched."""

    status = 502


class ParseError(FeedsError):
    """A source's body could not be read as its kind."""

    status = 422


class BadDefinition(FeedsError):
    """A source's definition (from the console or the API) breaks the rule every `[[sources]]` table follows."""

    status = 422

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class OriginRefused(FeedsError):
    """A cross-origin request (a CORS preflight) from an origin the configuration does not allow."""

    status = 403


class StoreError(FeedsError):
    """The article store could not do what was asked: the request clashes with what is stored."""

    status = 409


class UnknownName(StoreError):
    """No partner, source or article by that name."""

    status = 404


class InvalidValue(StoreError):
    """A value the store keeps for itself (a reserved label) or cannot hold."""

    status = 422


class StoreUnavailable(StoreError):
    """The database does not answer."""

    status = 503


class SchemaNotCurrent(StoreError):
    """The database's schema is behind the code: `gazette db upgrade` first."""

    status = 503

"""The exceptions of the content side.

    FeedsError
     ├── ConfigError     a bad configuration file or environment override (key + reason)
     ├── FetchError      a source could not be fetched (network, HTTP status, size, time)
     ├── ParseError      a source's bytes are not a usable feed or export
     └── StoreError      the database refused or is out of date

The web layer and the CLI map these to status codes and exit codes; nothing below them decides that.
"""


class FeedsError(Exception):
    """Base of every error raised by the feeds package."""


class ConfigError(FeedsError):
    """A configuration value is missing, unknown or invalid. `key` names it as the user wrote it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class FetchError(FeedsError):
    """A source could not be fetched."""


class ParseError(FeedsError):
    """A source's body could not be read as its kind."""


class StoreError(FeedsError):
    """The article store could not do what was asked."""

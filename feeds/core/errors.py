"""The one exception tree. Every error Gazette raises on purpose descends from `GazetteError` and carries the HTTP
status it means, so the web layer maps errors to responses in one place (`feeds.core.http`) and the CLI maps them to
exit codes in one place (`service.py`):

    GazetteError                 500 unless a child says otherwise
     ├── ConfigError             a bad configuration file or environment override (key + reason); exit code 2
     ├── feeds.errors.FeedsError     the content side's root (fetch, parse, store, partners, scheduling)
     └── newsletter.errors.NewsletterError   the audience side's root (subscribers, links, delivery)
"""

from __future__ import annotations


class GazetteError(Exception):
    """Base of every error Gazette raises on purpose. `status` is the HTTP status a request that met it gets."""

    status: int = 500


class ConfigError(GazetteError):
    """A configuration value is missing, unknown or invalid. `key` names it as the user wrote it."""

    status = 500  # a request never meets it: the service does not start

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class NotFound(GazetteError):
    """What was asked for does not exist (an unknown id, slug or name)."""

    status = 404


class Conflict(GazetteError):
    """The request clashes with what exists (a name taken, a state that does not allow it)."""

    status = 409


class Invalid(GazetteError):
    """The request's values are not acceptable, whatever the stored state."""

    status = 422


class Unavailable(GazetteError):
    """A part Gazette depends on (the database, a relay) cannot answer now; trying later may work."""

    status = 503

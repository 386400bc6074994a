"""The one exception tree. Every error Gazette raises on purpose descends from `GazetteError` and carries the HTTP
status it means, so the web layer maps errors to responses in one place (`feeds.core.http`) and the CLI maps them to
exit codes in one place (`feeds.core.commands.GazetteGroup`):

    GazetteError                 500 unless a child says otherwise
     ├── ConfigError             a bad configuration file or environment override (key + reason); exit code 2
     ├── Invalid                 422: a request's values are not acceptable, whatever is stored
     ├── feeds.core.scheduling.SchedulerError   the scheduler could not start or a job went astray
     ├── feeds.errors.FeedsError     the content side's root (fetch, parse, store, partners)
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


class Invalid(GazetteError):
    """The request's values are not acceptable, whatever the stored state."""

    status = 422

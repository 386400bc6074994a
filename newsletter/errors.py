"""The exceptions of the audience side, under the one tree of `feeds.core.errors`.

    GazetteError
     └── NewsletterError        500
          ├── SubscriberError   an address or subscriber record is not acceptable (bad address, unknown id); 422
          │    ├── RateLimited  too many mails asked for one address or from one client; `retry_after` seconds; 429
          │    └── LinkUsed     a one-time link (a confirmation) that was used, replaced or outdated by an unsubscribe; 409
          ├── TokenError        a link's token is expired or not ours; `reason` is "expired" or "invalid"; 400
          ├── UnknownEdition    no edition of that name is configured (or no run of that id); 404
          │    └── UnknownAlert no breaking-news alert with that id; 404
          ├── AlertRefused      a breaking-news alert that cannot go as written (no subject, unknown section); 422
          ├── EditionState      the run is not in a state for that (pause a run that is done, retry a paused one); 409
          └── DeliveryError     a mail could not be handed over; `is_permanent` says whether to retry; 502
"""

from __future__ import annotations

from feeds.core.errors import GazetteError


class NewsletterError(GazetteError):
    """Base of every error raised by the newsletter package."""


class SubscriberError(NewsletterError):
    """A subscriber or address was refused."""

    status = 422


class RateLimited(SubscriberError):
    """Too many requests for one address or from one client."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkUsed(SubscriberError):
    """A confirmation link that was used already, replaced by a newer one, or followed by an unsubscribe."""

    status = 409


class TokenError(NewsletterError):
    """A signed link that is expired or was not made by us (tampered, wrong purpose)."""

    status = 400

    def __init__(self, reason: str, purpose: str) -> None:
        super().__init__(f"{purpose} link is {reason}")
        self.reason = reason
        self.purpose = purpose


class DeliveryError(NewsletterError):
    """A mail was not delivered. Permanent (5xx, refused recipient) or transient (4xx, dropped connection)."""

    status = 502

    def __init__(self, message: str, *, is_permanent: bool) -> None:
        super().__init__(message)
        self.is_permanent = is_permanent


class UnknownEdition(NewsletterError):
    """No edition of that name is configured."""

    status = 404


class UnknownAlert(UnknownEdition):
    """No breaking-news alert with that id."""


class AlertRefused(NewsletterError):
    """A breaking-news alert that cannot go as written: no subject or text, an unknown article or section, a bad
    link."""

    status = 422


class EditionState(NewsletterError):
    """An edition run cannot do that in its state: pausing a run that is not sending, resuming one that is not
    paused, retrying one that is paused."""

    status = 409

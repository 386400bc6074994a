"""The exceptions of the audience side.

    NewsletterError
     ├── SubscriberError    an address or subscriber record is not acceptable (bad address, unknown id)
     └── DeliveryError      a mail could not be handed over; `is_permanent` says whether to retry
"""


class NewsletterError(Exception):
    """Base of every error raised by the newsletter package."""


class SubscriberError(NewsletterError):
    """A subscriber or address was refused."""


class DeliveryError(NewsletterError):
    """A mail was not delivered. Permanent (5xx, refused recipient) or transient (4xx, dropped connection)."""

    def __init__(self, message: str, *, is_permanent: bool) -> None:
        super().__init__(message)
        self.is_permanent = is_permanent

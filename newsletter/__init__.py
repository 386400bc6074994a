"""The audience side of Gazette: subscribers, digests, mail rendering and delivery.

    db           subscribers, editions, deliveries (tables on feeds.db.metadata)
    subscribers  SubscriberStore: add, import, list by frequency
    digest       what a subscriber's digest holds (pure)
    compose      Digest -> HTML + text -> EmailMessage (jinja2)
    transport    maildir:// and smtp(s):// delivery behind one small interface
    send         an edition run: one delivery row per (edition, subscriber), resumable

May import `feeds`; `feeds` never imports this package. Errors: see `newsletter.errors`.
"""

from .errors import DeliveryError, NewsletterError, SubscriberError

__all__ = ["DeliveryError", "NewsletterError", "SubscriberError"]

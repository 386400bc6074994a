"""The audience side of Gazette: subscribers, digests, mail rendering and delivery.

    db           subscribers, suppressions, editions, segments, deliveries: tables and migrations
    subscribers  SubscriberStore: consent, pause, import, suppression, bounces, export, erasure
    tokens       signed links per purpose, CSRF       messages    page and notice words, ko and en
    web          subscribe / confirm / preferences / unsubscribe pages      limits  per-key rate limits
    digest       what a subscriber's digest holds (pure)
    compose      Digest -> HTML + text per segment -> each subscriber's MIME bytes
    signing      DKIM (dkimpy)      transport   maildir:// and smtp(s):// behind one small interface
    deliveries   DeliveryStore: editions, segments, delivery rows in batches
    send         an edition run: segments, workers, rate limit, retries, resume    preview  dry runs
    archive      "view in browser"  sharing     "email this article"   bounces   DSNs, complaints
    api, cli     the admin API and the commands of this side

May import `feeds`; `feeds` never imports this package. Errors: see `newsletter.errors`.
"""

from .errors import DeliveryError, NewsletterError, SubscriberError

__all__ = ["DeliveryError", "NewsletterError", "SubscriberError"]

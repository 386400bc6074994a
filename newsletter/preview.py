"""What an edition would be, without sending or recording anything: `digest preview` and `digest send --dry-run`."""

from __future__ import annotations

from datetime import datetime

from feeds.settings import EditionSettings

from .archive import fill
from .compose import ARCHIVE, EMAIL, NAME, PREFERENCES, UNSUBSCRIBE, make_template, personalise, render_digest
from .send import Context, SendReport, digest_for, job_of, segments
from .subscribers import Subscriber, normalise_email


def preview_edition(edition: EditionSettings, *, scheduled_at: datetime, ctx: Context,
                    email: str) -> dict[str, object] | None:
    """What `email` would get: {"html", "text", "eml"}; None when nothing is new for them."""
    s = ctx.settings
    found = ctx.subscribers.find(email)
    subscriber = found or Subscriber(id=0, email=normalise_email(email), name=None, status="confirmed",
                                     categories=tuple(c.slug for c in s.categories), editions=(edition.name,),
                                     timezone=None, language=None, confirmed_at=None, public_id="preview")
    period_start = scheduled_at - edition.window
    high_waters = ctx.deliveries.high_waters([subscriber.id], exclude_edition=None) if found else {}
    [(key, group, language, zone, after)] = list(segments([subscriber], s, period_start, high_waters))
    most_viewed = (ctx.articles.most_viewed(since=period_start, until=scheduled_at, limit=edition.most_viewed)
                   if edition.most_viewed else [])
    digest = digest_for(edition, subscriber.categories, after, scheduled_at, most_viewed, ctx)
    if digest is None:
        return None
    campaign = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": f"{edition.name}-preview"}
    rendered = render_digest(ctx.templates, s, digest, language=language, zone=zone,  # type: ignore[arg-type]
                             link=lambda article_id: ctx.redirects.url(article_id, "email", query=campaign),
                             has_ads=edition.has_ads)
    template = make_template(s, rendered, list_id=edition.name)
    recipient = job_of(subscriber, 0, 0, template, ctx, attempts=0).recipient
    data = personalise(template, recipient, now=ctx.clock(), unsubscribe_address=s.mail.unsubscribe_address)
    if ctx.signer is not None:
        data = ctx.signer.sign(data)
    values = {EMAIL: recipient.email, NAME: recipient.name or "", UNSUBSCRIBE: recipient.unsubscribe_url,
              PREFERENCES: recipient.preferences_url, ARCHIVE: recipient.archive_url}
    return {"html": fill(rendered.html, values), "text": fill(rendered.text, values, escape=str),
            "eml": data.replace(b"\r\n", b"\n")}


def dry_run(edition: EditionSettings, scheduled_at: datetime, period_start: datetime, recipients: list[Subscriber],
             ctx: Context) -> SendReport:
    s = ctx.settings
    high_waters = ctx.deliveries.high_waters([r.id for r in recipients], exclude_edition=None)
    sent = skipped = 0
    for _, group, _, _, after in segments(recipients, s, period_start, high_waters):
        found = ctx.articles.articles(categories=group[0].categories or [c.slug for c in s.categories],
                                      published_after=after, published_until=scheduled_at, limit=1)
        if found:
            sent += len(group)
        else:
            skipped += len(group)
    return SendReport(edition.name, None, scheduled_at, len(recipients), sent, skipped, 0, 0, True)

"""What an edition would be, without sending or recording anything: `digest preview` and `digest send --dry-run`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .settings import EditionSettings

from .archive import fill
from .compose import (ARCHIVE, EMAIL, NAME, PREFERENCES, UNSUBSCRIBE, digest_subject, make_template, personalise,
                      render_digest)
from .send import Context, SendReport, digest_for, job_of, recipients_of, segments
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


@dataclass(frozen=True)
class PlannedMail:
    """One recipient's mail in a dry run: who, in which zone and segment, how many articles, under what subject."""

    subscriber_id: int
    email: str
    zone: str
    segment: str  # the segment's key: recipients with the same key get the same digest
    articles: int
    subject: str


@dataclass(frozen=True)
class Plan:
    """Who would get what from a send of `edition` at `scheduled_at`; nothing sent, nothing recorded."""

    edition: str
    scheduled_at: datetime
    mails: tuple[PlannedMail, ...]  # by subscriber id
    recipients: int
    segments: int  # segments with something new: digests that would be built
    skipped: int  # recipients with nothing new since their last digest


def plan_edition(edition: EditionSettings, *, scheduled_at: datetime, ctx: Context) -> Plan:
    """A manual send's dry run: the edition's readers as a manual send picks them (whatever their zone)."""
    recipients = recipients_of(edition, scheduled_at, ctx, everyone=True)
    return plan_for(edition, scheduled_at, scheduled_at - edition.window, recipients, ctx)


def plan_for(edition: EditionSettings, scheduled_at: datetime, period_start: datetime, recipients: list[Subscriber],
             ctx: Context) -> Plan:
    """Who of `recipients` would get what. Each segment's digest is built once (one query for its articles) and its
    subject worked out without rendering the mail: cheap for a list of any length."""
    s = ctx.settings
    high_waters = ctx.deliveries.high_waters([r.id for r in recipients], exclude_edition=None)
    most_viewed = (ctx.articles.most_viewed(since=period_start, until=scheduled_at, limit=edition.most_viewed)
                   if edition.most_viewed else [])
    mails: list[PlannedMail] = []
    segment_count = skipped = 0
    for key, group, language, zone, after in segments(recipients, s, period_start, high_waters):
        digest = digest_for(edition, group[0].categories, after, scheduled_at, most_viewed, ctx)
        if digest is None:
            skipped += len(group)
            continue
        segment_count += 1
        subject = digest_subject(s, digest, language=language, zone=zone, has_ads=edition.has_ads)
        mails += [PlannedMail(r.id, r.email, str(zone), key, digest.article_count, subject) for r in group]
    return Plan(edition.name, scheduled_at, tuple(sorted(mails, key=lambda m: m.subscriber_id)), len(recipients),
                segment_count, skipped)


def dry_run(edition: EditionSettings, scheduled_at: datetime, period_start: datetime, recipients: list[Subscriber],
             ctx: Context) -> SendReport:
    """`send_edition(dry_run=True)`: the plan's counts."""
    plan = plan_for(edition, scheduled_at, period_start, recipients, ctx)
    return SendReport(edition.name, None, scheduled_at.astimezone(ctx.settings.site.timezone), plan.recipients,
                      len(plan.mails), plan.skipped, 0, 0, True)

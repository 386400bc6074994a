"""What an edition would be, without sending or recording anything: `digest preview`, `digest send --dry-run`, and
the console's preview and "send a test to me".

All go through the pipeline of `segments`, as a send does: the preview to the last byte (rendered, personalised
and signed), the dry run to each segment's digest and subject, without rendering. A test mail is one reader's digest
(their categories, language and zone) sent to someone else's address, its subject marked as a test, with stand-in
links (nobody's unsubscribe or preferences link) and recorded nowhere: no delivery row, no high-water mark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .compose import (
    EMAIL,
    RenderedMail,
    NAME,
    PREFERENCES,
    UNSUBSCRIBE,
    WEB_COPY,
    digest_subject,
    replace_markers,
    wire_address,
)
from .edition_run import EditionRun
from .messages import TEXT
from .records import Subscriber, normalise_email
from .segments import (
    Outgoing,
    digest_of,
    group_segments,
    message_bytes,
    most_viewed_of,
    outgoing,
    readers_of,
    render_segment,
    segment_mail,
)
from .settings import EditionSettings


STAND_IN = "preview"  # the public id of a previewed reader's links: nobody's


def preview_edition(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun, email: str,
                    stand_in_links: bool = False) -> dict[str, object] | None:
    """What `email` (or a subscriber id) would get: {"html", "text", "eml", "subject"}; None when nothing is new for
    them. Someone who is not a reader is previewed as a new reader of every category. `stand_in_links`: the reader's
    own unsubscribe and preferences links replaced by nobody's (the console shows the preview to an editor)."""
    found = _mail_for(edition, scheduled_at, run, email, campaign=f"{edition.name}-preview",
                      stand_in_links=stand_in_links)
    if found is None:
        return None
    rendered, message = found
    recipient = message.recipient
    values = {EMAIL: recipient.email, NAME: recipient.name or "", UNSUBSCRIBE: recipient.unsubscribe_url,
              PREFERENCES: recipient.preferences_url, WEB_COPY: recipient.web_copy_url}
    return {"html": replace_markers(rendered.html, values), "text": replace_markers(rendered.text, values, escape=str),
            "eml": message_bytes(message, run).replace(b"\r\n", b"\n"), "subject": rendered.subject}


def send_test(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun, as_reader: str,
              to: str) -> str | None:
    """Send the digest `as_reader` (an address or subscriber id) would get to `to` instead, its subject marked as a
    test, with stand-in links; recorded nowhere. The subject sent, or None when nothing is new for that reader.
    DeliveryError when the relay refuses it."""
    address = normalise_email(to)
    found = _mail_for(edition, scheduled_at, run, as_reader, campaign=f"{edition.name}-test", stand_in_links=True,
                      deliver_to=address)
    if found is None:
        return None
    _, message = found
    connection = run.messenger.connect()
    try:
        connection.send(message.envelope_from, wire_address(address), message_bytes(message, run))
    finally:
        connection.close()
    return message.template.subject


def _mail_for(edition: EditionSettings, scheduled_at: datetime, run: EditionRun, who: str, *, campaign: str,
              stand_in_links: bool, deliver_to: str | None = None) -> tuple[RenderedMail, Outgoing] | None:
    """The rendered segment mail and the one message of the reader `who` (address or id; else a new reader of every
    category at that address), as a send would make it; None when nothing is new for them. `deliver_to`: a test
    mail's address, its subject marked in the segment's language."""
    s = run.settings
    found = run.readers.find(who)
    subscriber = found or Subscriber(id=0, email=normalise_email(who), name=None, status="confirmed",
                                     categories=tuple(c.slug for c in s.categories), editions=(edition.name,),
                                     timezone=None, language=None, confirmed_at=None, public_id=STAND_IN)
    period_start = scheduled_at - edition.window
    high_waters = run.ledger.high_waters([subscriber.id]) if found else {}
    [segment] = group_segments([subscriber], site_zone=s.site.timezone, site_language=s.site.language,
                               period_start=period_start, high_waters=high_waters)
    digest = digest_of(edition, subscriber.categories, segment.after, scheduled_at,
                       most_viewed_of(edition, period_start, scheduled_at, run), run)
    if digest is None:
        return None
    rendered = render_segment(edition, digest, segment, run, campaign=campaign)
    if deliver_to is not None:
        rendered = replace(rendered, subject=TEXT[segment.language]["digest_test_subject"].format(
            subject=rendered.subject))
    if stand_in_links:
        subscriber = replace(subscriber, id=0, public_id=STAND_IN)
    if deliver_to is not None:
        subscriber = replace(subscriber, email=deliver_to, name=None)
    message = outgoing(subscriber, 0, segment_mail(rendered, edition_name=edition.name, edition_id=0, segment_id=0,
                                                   run=run), run, attempts=0)
    return rendered, message


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


def plan_edition(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun) -> Plan:
    """A manual send's dry run: the edition's readers as a manual send picks them (whatever their zone)."""
    recipients = readers_of(edition, scheduled_at, run, everyone=True)
    return plan_for(edition, scheduled_at, scheduled_at - edition.window, recipients, run)


def plan_for(edition: EditionSettings, scheduled_at: datetime, period_start: datetime, recipients: list[Subscriber],
             run: EditionRun) -> Plan:
    """Who of `recipients` would get what. Each segment's digest is built once (one query for its articles) and its
    subject worked out without rendering the mail: cheap for a list of any length."""
    s = run.settings
    high_waters = run.ledger.high_waters([r.id for r in recipients])
    most_viewed = most_viewed_of(edition, period_start, scheduled_at, run)
    mails: list[PlannedMail] = []
    segment_count = skipped = 0
    for segment in group_segments(recipients, site_zone=s.site.timezone, site_language=s.site.language,
                                  period_start=period_start, high_waters=high_waters):
        digest = digest_of(edition, segment.categories, segment.after, scheduled_at, most_viewed, run)
        if digest is None:
            skipped += len(segment.readers)
            continue
        segment_count += 1
        subject = digest_subject(s, digest, language=segment.language, zone=segment.zone, has_ads=edition.has_ads)
        mails += [PlannedMail(r.id, r.email, str(segment.zone), segment.key, digest.article_count, subject)
                  for r in segment.readers]
    return Plan(edition.name, scheduled_at, tuple(sorted(mails, key=lambda m: m.subscriber_id)), len(recipients),
                segment_count, skipped)

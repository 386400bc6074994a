"""The `digest` commands: send (with --dry-run), status, retry, pause, resume, preview; and the audience side's part of
`gazette check` (`print_check`). Thin: arguments in, `components_of(ctx)` for the objects, the outcome printed."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from feeds.core import database
from feeds.core.commands import (
    components_of,
    config_option,
    duration_text,
    local_time,
    parse_at,
    redacted,
)

from ..deliveries import STATUSES, DeliveryRow
from ..preview import Plan
from ..records import ALERTS
from ..settings import Settings
from ..timing import is_zone, next_runs

SHOWN_FAILURES = 20  # `digest send` lists this many failures, then points to `digest status`
# `check` shows each edition's next run in the site's zone, these, and every zone a reader chose.
SAMPLE_ZONES = ("Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "America/New_York",
                "America/St_Johns")


def print_check(components: Any) -> None:
    """The audience side's part of `gazette check`: the mail relay, each edition with its next runs on readers'
    clocks, and a warning (on stderr) for readers of an edition that is no longer configured."""
    s = components.settings
    tz = s.site.timezone
    now = components.clock()
    click.echo(f"mail: {redacted(s.mail.url)} from {s.mail.from_address}")
    click.echo(f"digest editions ({len(s.digests)}), at their hour on each reader's clock:")
    chosen = _readers_zones(components)
    sample = [tz] + [ZoneInfo(z) for z in dict.fromkeys([*SAMPLE_ZONES, *(z for z in chosen or () if z)])
                     if z != tz.key and is_zone(z)]
    for edition in s.digests:
        ads = ", advertising (only to readers who consented)" if edition.has_ads else ""
        click.echo(f"  {edition.name} ({edition.label_in(s.site.language)}): cron '{edition.schedule}', "
                   f"window {duration_text(edition.window)}, up to {edition.max_articles} articles, "
                   f"{edition.most_viewed} most viewed{ads}")
        for zone, at in next_runs(edition.schedule, sample, now):
            click.echo(f"    next in {zone.key}: {at.astimezone(zone):%Y-%m-%d %H:%M %Z} "
                       f"({at.astimezone(tz):%Y-%m-%d %H:%M %Z})")
    if chosen is None:
        click.echo("  readers' editions not checked: no migrated database yet (gazette db upgrade)")
    else:
        for name, count in components.subscribers.orphans().items():
            click.echo(f"  warning: {count} reader(s) chose edition '{name}', which is not configured: they get "
                       f"nothing until [digests.{name}] is back or they choose another edition", err=True)


def _readers_zones(components: Any) -> list[str | None] | None:
    """The zones readers chose, or None when the database cannot say (not there, or not migrated)."""
    url = make_url(components.settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return None  # `check` creates nothing: a SQLite file appears with `db upgrade`
    try:
        if not database.is_current(components.engine, components.migrations):
            return None
        return components.subscribers.zones()
    except SQLAlchemyError:
        return None


@click.group("digest")
def digest_group() -> None:
    """Digest editions."""


def _edition_run(ctx: click.Context, edition: str, at: str | None):  # type: ignore[no-untyped-def]
    """The services and the edition's time, after checking that EDITION is configured."""
    services = components_of(ctx)
    settings = services.settings
    if settings.edition(edition) is None:
        raise click.UsageError(f"unknown edition {edition!r}; configured: " + ", ".join(e.name for e in settings.digests))
    scheduled_at = parse_at(at, settings.site.timezone) if at else services.clock().replace(microsecond=0)
    services.prepare_database(migrate=False)
    return services, scheduled_at.astimezone(settings.site.timezone)  # the same instant, as a person reads it


@digest_group.command("send")
@click.argument("edition")
@click.option("--dry-run", is_flag=True,
              help="List who would get what (address, zone, segment, articles, subject); send and record nothing.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="With --dry-run: list this many recipients (0 = all); the totals count everyone.")
@click.option("--at", "at", default=None, metavar="ISO-TIME",
              help="The edition's time (default now); without a zone, in the site's time zone.")
@config_option
@click.pass_context
def digest_send(ctx: click.Context, edition: str, dry_run: bool, limit: int, at: str | None) -> None:
    """Send EDITION (e.g. daily) to its confirmed subscribers, once each.

    A manual send goes to every subscriber of the edition, whatever their time zone; running it
    again with the same --at resumes it (nobody gets it twice). Prints a summary, then the run's failed
    deliveries with their reasons. Exit 1 if the run has failed deliveries, this time or an earlier one."""
    services, scheduled_at = _edition_run(ctx, edition, at)
    if dry_run:
        _print_plan(services.plan(edition, scheduled_at), limit, services.settings)
        return
    total = services.subscribers.count_active(edition, ads=services.settings.edition(edition).has_ads)
    if total > 20 and sys.stderr.isatty():
        started, done = time.monotonic(), [0]

        def step(outcome: str) -> None:
            if outcome != "retry":
                done[0] += 1
                bar.update(1, f"{done[0] / max(time.monotonic() - started, 1e-6):,.0f} msg/s")

        with click.progressbar(length=total, label=edition, file=sys.stderr, show_eta=True, show_pos=True,
                               item_show_func=lambda rate: rate) as bar:
            report = services.send(edition, scheduled_at, everyone=True, progress=step)
    else:
        report = services.send(edition, scheduled_at, everyone=True)
    click.echo(report.line())
    # The run's failures, this attempt's or an earlier one's: a rerun that finds it done still shows them.
    failed, rows = (services.deliveries.rows(report.edition_id, statuses=("failed",), limit=SHOWN_FAILURES)
                    if report.edition_id is not None else (0, []))
    if failed:
        click.echo(f"failed {failed}:")
        for row in rows:
            click.echo(_row_line(row, services.settings))
        if failed > len(rows):
            click.echo(f"and {failed - len(rows)} more: gazette digest status {edition} --at {scheduled_at.isoformat()}")
        click.echo(f"retry them with: gazette digest retry {edition} --at {scheduled_at.isoformat()}")
    if report.failed or failed:
        sys.exit(1)


def _print_plan(plan: Plan, limit: int, settings: Settings) -> None:
    tz = settings.site.timezone
    shown = plan.mails if limit == 0 else plan.mails[:limit]
    for mail in shown:
        click.echo(f"#{mail.subscriber_id} {mail.email} {mail.zone} segment {mail.segment[:8]} {mail.articles} "
                   f"article{'' if mail.articles == 1 else 's'}: {mail.subject}")
    if len(shown) < len(plan.mails):
        click.echo(f"and {len(plan.mails) - len(shown)} more (--limit 0 lists all)")
    click.echo(f"dry run of {plan.edition} at {local_time(plan.scheduled_at, tz)}: {plan.recipients} recipients, "
               f"would send {len(plan.mails)} from {plan.segments} segment{'' if plan.segments == 1 else 's'}, "
               f"nothing new for {plan.skipped}; nothing sent or recorded")


def _row_line(row: DeliveryRow, settings: Settings) -> str:
    """One delivery as `digest status`, `send` and `retry` show it."""
    tz = settings.site.timezone
    attempts = f"{row.attempts} attempt{'' if row.attempts == 1 else 's'}"
    when = ""
    if row.status in ("retry", "held") and row.next_attempt_at is not None:
        when = f", next attempt {local_time(row.next_attempt_at, tz)}"
    elif row.sent_at is not None:
        when = f", sent {local_time(row.sent_at, tz)}"
    return f"  #{row.subscriber_id} {row.email or '(erased)'}: {row.status}, {attempts}{when}: {row.last_error or '-'}"


def _edition_found(ctx: click.Context, edition: str, at: str | None):  # type: ignore[no-untyped-def]
    """The services and the run of EDITION at --at (default: its latest), after checking that EDITION is configured."""
    services = components_of(ctx)
    settings = services.settings
    if settings.edition(edition) is None and edition != ALERTS:  # an alert's run is reported as any edition's
        raise click.UsageError(f"unknown edition {edition!r}; configured: " + ", ".join(e.name for e in settings.digests))
    tz = settings.site.timezone
    scheduled_at = parse_at(at, tz) if at else None
    services.prepare_database(migrate=False)
    edition_id = services.deliveries.find_edition(edition, scheduled_at)
    if edition_id is None:
        when = f" at {local_time(scheduled_at, tz)}" if scheduled_at else ""
        raise click.ClickException(f"no run of {edition}{when} yet: `gazette digest send {edition}` starts one")
    [stats] = services.deliveries.stats(edition_id)
    return services, stats


@digest_group.command("status")
@click.argument("edition")
@click.option("--at", "at", default=None, metavar="ISO-TIME",
              help="Which run: the edition's time (default: its latest run); without a zone, in the site's time zone.")
@config_option
@click.pass_context
def digest_status(ctx: click.Context, edition: str, at: str | None) -> None:
    """Show one run of EDITION: when it was scheduled, started and finished, its deliveries by state, and every
    failed, retrying or held delivery with its reason; times in the site's time zone. EDITION `alerts`: a breaking
    news alert (the latest, or the one at --at).

    Exit 0 when the run has no failed delivery, 1 when it has (`gazette digest retry` tries them again), or when
    EDITION has no run yet; 2 for an edition that is not configured."""
    services, stats = _edition_found(ctx, edition, at)
    settings = services.settings
    tz = settings.site.timezone
    click.echo(f"{stats.name} at {local_time(stats.scheduled_at, tz)} (edition {stats.id}): {stats.status}; "
               f"started {local_time(stats.created_at, tz)}, finished "
               f"{local_time(stats.finished_at, tz, never='not yet')}")
    click.echo(", ".join(f"{status} {stats.counts.get(status, 0)}" for status in STATUSES))
    if stats.status == "paused":
        click.echo(f"paused {local_time(stats.paused_at, tz)}: gazette digest resume {stats.id} carries it on")
    for statuses, title in ((("failed",), "failed"), (("retry", "held"), "waiting"), (("skipped",), "not retried")):
        total, rows = services.deliveries.rows(stats.id, statuses=statuses, has_error=True)
        if total:
            click.echo(f"{title} {total}:")
            for row in rows:
                click.echo(_row_line(row, settings))
    if stats.counts.get("failed", 0):
        click.echo(f"retry them with: gazette digest retry {edition} --at "
                   f"{stats.scheduled_at.astimezone(settings.site.timezone).isoformat()}")
        sys.exit(1)


@digest_group.command("retry")
@click.argument("edition")
@click.option("--at", "at", default=None, metavar="ISO-TIME",
              help="Which run: the edition's time (default: its latest run); without a zone, in the site's time zone.")
@config_option
@click.pass_context
def digest_retry(ctx: click.Context, edition: str, at: str | None) -> None:
    """Try the failed and held deliveries of one run of EDITION (or of an alert: `alerts`) once more, now (one
    attempt each).

    An edition with ads stays held for readers whose zone is between 21:00 and 08:00. Subscribers who no longer
    receive it (unsubscribed, bounced, complained, paused) are skipped, with the reason. Exit 1 if a mail failed
    again, if another process is sending the run, or if EDITION has no run yet; 2 for an edition that is not
    configured."""
    services, stats = _edition_found(ctx, edition, at)
    settings = services.settings
    tz = settings.site.timezone
    scheduled_at = stats.scheduled_at.astimezone(tz)
    report = services.retry(edition, stats.id, scheduled_at)
    head = f"{edition} at {local_time(scheduled_at, tz)} (edition {stats.id})"
    if report.is_busy:
        raise click.ClickException(f"{head}: another process is sending this edition; try again when it is done")
    if not report.outcomes:
        click.echo(f"{head}: nothing to retry (no failed or held deliveries)")
        return
    click.echo(f"{head}: retried {len(report.outcomes)}: " + ", ".join(
        f"{status} {report.count(status)}" for status in ("sent", "failed", "held", "skipped", "queued")
        if report.count(status) or status in ("sent", "failed")))
    sent = 0
    for o in report.outcomes:
        if o.status == "sent":
            sent += 1
            if sent > SHOWN_FAILURES:  # every mail that did not go is listed; of those that went, a few
                continue
        when = f" until {local_time(o.at, tz)}" if o.status == "held" and o.at else ""
        again = " again" if o.status == "failed" else ""
        click.echo(f"  #{o.subscriber_id} {o.email or '(erased)'}: {o.status}{again}{when}"
                   + (f": {o.reason}" if o.reason else ""))
    if sent > SHOWN_FAILURES:
        click.echo(f"  and {sent - SHOWN_FAILURES} more sent")
    if report.failed:
        sys.exit(1)


@digest_group.command("pause")
@click.argument("edition_id", type=click.IntRange(min=1))
@config_option
@click.pass_context
def digest_pause(ctx: click.Context, edition_id: int) -> None:
    """Pause the run EDITION_ID (the id `digest status` shows) while it is sending.

    Whichever process sends it stops taking readers within a second; the mail already handed to the relay is
    recorded, the rest waits. Nothing carries a paused run on by itself: `gazette digest resume EDITION_ID` does.
    Exit 1 if the run is not sending (done, or paused already) or there is no such run."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    stats = services.pause(edition_id)
    tz = services.settings.site.timezone
    click.echo(f"{stats.name} at {local_time(stats.scheduled_at, tz)} (edition {stats.id}): paused; "
               f"resume it with: gazette digest resume {stats.id}")


@digest_group.command("resume")
@click.argument("edition_id", type=click.IntRange(min=1))
@config_option
@click.pass_context
def digest_resume(ctx: click.Context, edition_id: int) -> None:
    """Resume the paused run EDITION_ID and send the rest of it, here, to its end.

    Nobody gets it twice: the run carries on through its delivery rows, to the readers it was for. Exit 1 if the
    run is not paused, has failed deliveries, or there is no such run."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    report = services.resume(edition_id)
    click.echo(report.line())
    if report.failed:
        sys.exit(1)


@digest_group.command("preview")
@click.argument("edition")
@click.option("--to", "to", required=True, metavar="EMAIL",
              help="Whose digest: a subscriber's own (categories, language, zone), else one with every category.")
@click.option("--format", "fmt", type=click.Choice(["html", "text", "eml"]), default="html", show_default=True)
@click.option("--at", "at", default=None, metavar="ISO-TIME", help="The edition's time (default now).")
@config_option
@click.pass_context
def digest_preview(ctx: click.Context, edition: str, to: str, fmt: str, at: str | None) -> None:
    """Print the digest EDITION would be for one address; sends and records nothing."""
    services, scheduled_at = _edition_run(ctx, edition, at)
    preview = services.preview(edition, scheduled_at, to)
    if preview is None:
        raise click.ClickException(f"nothing new for {to} in {edition} at {scheduled_at.isoformat()}: no mail would go")
    click.echo(preview[fmt] if fmt != "eml" else preview["eml"].decode("utf-8", "replace"), nl=False)

"""The `subscribers` commands (add, list, import, export, remove) and `bounces process`. Thin: arguments in,
`components_of(ctx)` for the objects, the outcome printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from feeds.core.commands import components_of, config_option

from ..db import SUBSCRIBER_STATUSES
from ..errors import DeliveryError, RateLimited
from ..records import split_list
from ..subscription import invite


@click.group("subscribers")
def subscribers_group() -> None:
    """Subscribers."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default=None)
@click.option("--categories", default="", help="Comma-separated category slugs (default: all).")
@click.option("--editions", default="", help="Comma-separated edition names (default: the first configured).")
@click.option("--frequency", default=None, hidden=True, help="The old name of --editions (one edition).")
@click.option("--confirmed", is_flag=True,
              help="Consent was obtained elsewhere; record it as given by an admin. Without it the subscriber is "
                   "pending and gets the confirmation mail, as from the subscribe form.")
@config_option
@click.pass_context
def subscribers_add(ctx: click.Context, email: str, name: str | None, categories: str, editions: str,
                    frequency: str | None, confirmed: bool) -> None:
    """Add or update one subscriber; unless --confirmed, mail them the confirmation link. Exit 1 if it could not
    be sent."""
    services = components_of(ctx)
    settings = services.settings
    known = [c.slug for c in settings.categories]
    chosen = split_list(categories)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise click.UsageError(f"unknown categories: {', '.join(unknown)}; configured: {', '.join(known)}")
    configured = [e.name for e in settings.digests]
    picked = split_list(editions) or ([frequency] if frequency else configured[:1])
    unknown = [e for e in picked if e not in configured]
    if unknown:
        raise click.UsageError(f"unknown edition(s): {', '.join(unknown)}; configured: {', '.join(configured)}")
    services.prepare_database(migrate=False)
    outcome, subscriber = services.subscribers.add(email, categories=chosen or known, editions=picked, name=name,
                                                   now=services.clock(), confirmed=confirmed, method="admin",
                                                   consent_text="given to the newsroom, recorded by an operator"
                                                   if confirmed else None)
    if outcome == "suppressed" or subscriber is None:
        raise click.ClickException(f"{email} unsubscribed, bounced, complained or was erased: only the person can "
                                   "subscribe again, through the subscribe form")
    click.echo(f"{outcome}: {subscriber.email} ({subscriber.status}; editions {', '.join(subscriber.editions)}; "
               f"{', '.join(subscriber.categories)})")
    if subscriber.status == "pending":
        try:
            sent = invite(services.subscribers, services.notices, subscriber, services.clock())
        except RateLimited as exc:
            click.echo(f"confirmation mail not sent: one went to this address less than an hour ago (again in "
                       f"{exc.retry_after // 60 + 1} min)")
        except DeliveryError as exc:
            click.echo(f"gazette: the confirmation mail could not be sent: {exc}", err=True)
            sys.exit(1)
        else:
            if sent:
                click.echo(f"confirmation mail sent to {subscriber.email}: they start when they confirm")


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), default=None)
@click.option("--edition", default=None, help="Only readers of this edition.")
@click.option("--category", default=None, help="Only readers of this category.")
@click.option("--search", default=None, help="Only addresses containing this text.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None, edition: str | None, category: str | None,
                     search: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List subscribers, oldest first, with their status, editions, categories and zone (times in the site's zone)."""
    services = components_of(ctx)
    settings = services.settings
    if category and settings.category(category) is None:
        raise click.UsageError(f"unknown category {category!r}; configured: "
                               + ", ".join(c.slug for c in settings.categories))
    services.prepare_database(migrate=False)
    total, rows = services.subscribers.list(status=status, edition=edition, category=category, search=search,
                                            limit=limit, offset=offset)
    zone = settings.site.timezone
    for s in rows:
        since = (s.confirmed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if s.confirmed_at else "-")
        if as_json:
            click.echo(json.dumps({"id": s.id, "email": s.email, "name": s.name, "status": s.status,
                                   "editions": list(s.editions), "categories": list(s.categories),
                                   "timezone": s.timezone, "language": s.language, "confirmed_at": since,
                                   "paused": s.paused_at is not None,
                                   "ad_consent": s.ad_consent_at is not None}, ensure_ascii=False))
        else:
            flags = "".join([" paused" if s.paused_at else "", " ads" if s.ad_consent_at else ""])
            click.echo(f"{s.id}\t{s.email}\t{s.status}{flags}\t{','.join(s.editions) or '-'}\t"
                       f"{','.join(s.categories)}\t{s.timezone or zone.key}\t{since}")
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    click.echo(f"{total} subscriber(s), showing {shown}", err=True)


@subscribers_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--confirmed", is_flag=True, help="Consent was obtained elsewhere: import as confirmed.")
@config_option
@click.pass_context
def subscribers_import(ctx: click.Context, file, confirmed: bool) -> None:  # type: ignore[no-untyped-def]
    """Import a CSV with a header: email[,name][,categories][,editions][,alerts] (a `frequency` column is read as the
    one edition of that name; `alerts` yes/true/1 adds the breaking-news alerts). Without --confirmed they are pending, and get no mail from the import."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    text = file.read()
    lines = max(1, text.count("\n") + (not text.endswith("\n")))
    with click.progressbar(length=lines, label="importing", file=sys.stderr, show_pos=True) as bar:
        done = [1]  # the header line

        def advance(line: int) -> None:
            bar.update(line - done[0])
            done[0] = line

        report = services.subscribers.import_csv(text, known_categories=[c.slug for c in services.settings.categories],
                                                 now=services.clock(), confirmed=confirmed,
                                                 consent_text=f"imported from {file.name}", on_row=advance)
    click.echo(report.summary())
    if report.invalid:
        sys.exit(1)


@subscribers_group.command("export")
@click.argument("email_or_id")
@config_option
@click.pass_context
def subscribers_export(ctx: click.Context, email_or_id: str) -> None:
    """Print everything held about one subscriber as JSON (for a data access request)."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    found = services.subscribers.find(email_or_id)
    record = services.subscribers.export(found.id) if found else None
    if record is None:
        raise click.ClickException(f"no subscriber {email_or_id!r}")
    click.echo(json.dumps(record, ensure_ascii=False, indent=2))


@subscribers_group.command("remove")
@click.argument("email_or_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@click.pass_context
def subscribers_remove(ctx: click.Context, email_or_id: str, yes: bool) -> None:
    """Erase one subscriber and their delivery history; a hash of the address stays so import can't re-add it."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    found = services.subscribers.find(email_or_id)
    if found is None:
        raise click.ClickException(f"no subscriber {email_or_id!r}")
    if not yes:
        click.confirm(f"erase {found.email} ({found.status}) and their delivery history?", abort=True)
    services.subscribers.erase(found.id, now=services.clock())
    click.echo(f"erased: {found.email}")


@click.group("bounces")
def bounces_group() -> None:
    """Bounces, complaints and mailto unsubscribes."""


@bounces_group.command("process")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@config_option
@click.pass_context
def bounces_process(ctx: click.Context, folder: Path | None) -> None:
    """Apply the DSNs, complaint reports and unsubscribe mails in the maildir FOLDER (default: [mail] bounce_folder),
    then file each into FOLDER/.processed or FOLDER/.unrecognised. Exit 1 if a mail could not be applied."""
    services = components_of(ctx)
    mail = services.settings.mail
    folder = folder or mail.bounce_folder
    if folder is None:
        raise click.UsageError("give a FOLDER, or set [mail] bounce_folder in the configuration")
    services.prepare_database(migrate=False)
    report = services.audience_jobs.process_bounces(folder)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)

"""The content side's commands: db upgrade, ingest, feeds build, views import, sources, partners, articles (a story's
life after publication), and the console's users (accounts are the shared layer's); and its part of
`gazette check` (`print_check`).

Why it is long: one short function per command, each a few lines over the same plumbing; a module per group would
only scatter the `gazette` command's table of contents.

Thin: each command parses its arguments, asks `components_of(ctx)` for what it needs and prints the outcome. The
objects come from `service.py`, which registers these commands on the `gazette` group; the plumbing every command
shares is `feeds.core.commands`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from . import db
from .core import database
from .core.accounts import ROLES, Actor, normalise_address
from .core.commands import (
    components_of,
    config_option,
    duration_text,
    local_time,
    redacted,
)
from .core.errors import ConfigError
from .model import HEALTHY, source_health
from .readership import read_views_csv
from .settings import build_partner


def print_check(components: Any) -> None:
    """The content side's part of `gazette check`: the file, the site, the database, categories and sources."""
    s = components.settings
    click.echo(f"configuration: {s.path} (valid)")
    click.echo(f"site: {s.site.name} <{s.site.base_url}>, time zone {s.site.timezone.key}, language {s.site.language}")
    click.echo(f"database: {redacted(s.database_url)}")
    q = s.queue
    click.echo(f"queue: {redacted(q.url)}, batches of {q.batch_size} readers, run by `gazette worker`" if q.url
               else "queue: none (every job runs in the scheduler's process)")
    click.echo(f"shared state: {redacted(q.redis_url)}" if q.redis_url
               else "shared state: none (each process keeps its rate limits and view dedupe)")
    click.echo(f"categories ({len(s.categories)}): " + ", ".join(f"{c.slug} ({c.name})" for c in s.categories))
    click.echo(f"sources ({len(s.sources)}):")
    for source in s.sources:
        target = source.category or "by category_map"
        click.echo(f"  {source.name}: {source.kind} {source.location}, every {duration_text(source.interval)}, "
                   f"into {target}")
    click.echo(f"partners ({len(s.partners)}): " + ", ".join(p.slug for p in s.partners))
    w = s.widgets
    click.echo(f"widgets: embeddable by {', '.join(w.origins) or 'the site itself only'}; rankings at most "
               f"{duration_text(w.refresh)} old, cached {w.max_age}s by browsers")


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@config_option
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply migrations: every side's branch to its head (safe to run again)."""
    services = components_of(ctx)
    before = ",".join(sorted(database.current_revisions(services.engine)))
    db.migrate(services.engine, services.migrations)
    after = ",".join(sorted(database.current_revisions(services.engine)))
    click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@click.command()
@click.argument("sources", nargs=-1)
@config_option
@click.pass_context
def ingest(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Poll sources now (all, or those named); one line per source. Exit 1 if any failed."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    entries = services.source_book.entries()  # the file's and those added in the console
    by_name = {entry.name: entry for entry in entries}
    unknown = [name for name in sources if name not in by_name]
    if unknown:
        raise click.UsageError(f"unknown source(s): {', '.join(unknown)}; known: "
                               + ", ".join(entry.name for entry in entries))
    invalid = [f"{name} ({by_name[name].problem})" for name in sources if by_name[name].source is None]
    if invalid:
        raise click.UsageError(f"source(s) not valid: {'; '.join(invalid)}")
    # All: the active ones (a paused source is polled only when named).
    chosen = [e.source for e in entries if e.source is not None and (e.name in sources if sources else e.is_active)]
    if len(chosen) > 5 and sys.stderr.isatty():
        with click.progressbar(length=len(chosen), label="ingesting", file=sys.stderr, show_pos=True) as bar:
            results = services.ingest_many(chosen, on_result=lambda r: bar.update(1))
    else:
        results = services.ingest_many(chosen, on_result=lambda r: None)
    for result in results:  # in configuration order, whatever order they finished in
        click.echo(result.line())
    if any(r.status == "error" for r in results):
        sys.exit(1)


@click.group("feeds")
def feeds_group() -> None:
    """Public feeds."""


@feeds_group.command("build")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write feeds/<slug>.<rss|atom|json> (and .gz) into.")
@config_option
@click.pass_context
def feeds_build(ctx: click.Context, out: Path) -> None:
    """Write every public feed as static files, the same bytes as served."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    written = services.publisher.build(out)
    click.echo(f"wrote {len(written)} files under {out}")


@click.group("views")
def views_group() -> None:
    """View counts."""


@views_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@config_option
@click.pass_context
def views_import(ctx: click.Context, file) -> None:  # type: ignore[no-untyped-def]
    """Add views from an analytics export: CSV with a header url_or_id,views[,from,to].

    Views go into the hour of `from` (else now). Importing the same file twice counts it twice."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    rows, problems = read_views_csv(file.read(), timezone=services.settings.site.timezone, now=services.clock())
    batch, total = [], 0
    for row in rows:
        article = services.store.find_article(row.url_or_id)
        if article is None:
            problems.append((row.line, f"no article {row.url_or_id!r}"))
            continue
        batch.append((article.id, row.counted_at, row.views))
        total += row.views
    services.store.add_views_batch(batch)
    click.echo(f"{total} views added to {len({a for a, _, _ in batch})} articles from {len(batch)} rows; "
               f"{len(problems)} rows skipped")
    for line, reason in sorted(problems):
        click.echo(f"line {line}: {reason}")
    if problems:
        sys.exit(1)


@click.group("sources")
def sources_group() -> None:
    """Sources: the configuration file's and those added in the console."""


@sources_group.command("list")
@click.option("--failing", is_flag=True, help="Only the sources that need attention (failing, unhealthy, disabled).")
@config_option
@click.pass_context
def sources_list(ctx: click.Context, failing: bool) -> None:
    """Each source (the file's, in its order, then those added in the console) with its origin, its health (new,
    ok, failing, unhealthy, disabled; or paused), its last fetch and next check in the site's time zone, its
    failures in a row and its last error. Exit 0 whatever their health."""
    services = components_of(ctx)
    settings = services.settings
    tz = settings.site.timezone
    services.prepare_database(migrate=False)
    states = {state.name: state for state in services.store.sources()}
    entries = services.source_book.entries()
    shown = 0
    for entry in entries:
        state = states.get(entry.name)
        if state is None:
            continue
        health = source_health(state, settings.fetch.failure_limit)
        if failing and entry.source is not None and (health in HEALTHY or entry.is_paused):
            continue  # a paused source needs no attention; one whose definition broke does
        shown += 1
        origin = "from config" if entry.origin == "config" else "console"
        shown_health = "paused" if entry.is_paused else "not valid" if entry.source is None else health
        click.echo(f"{entry.name} ({origin}): {shown_health}; last fetch {local_time(state.last_checked_at, tz)}, "
                   f"next check {local_time(state.next_check_at, tz, never='when the scheduler next runs')}, "
                   f"{state.consecutive_failures} failure{'' if state.consecutive_failures == 1 else 's'} in a row")
        if entry.problem:
            click.echo(f"  not valid: {entry.problem}")
        if state.disabled_reason:
            click.echo(f"  disabled: {state.disabled_reason}")
        if state.last_error and health not in HEALTHY:
            click.echo(f"  last error ({local_time(state.last_error_at, tz)}): {state.last_error}")
        if state.clock_warning:
            click.echo(f"  clock: {state.clock_warning}")
    if failing and not shown:
        click.echo(f"all {len(entries)} sources are healthy")


@click.group("partners")
def partners_group() -> None:
    """Syndication partners and their keys."""


@partners_group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The partner's name.")
@click.option("--categories", required=True, help="Comma-separated category slugs it licenses, or all.")
@click.option("--summary-only", is_flag=True, help="Summaries instead of the full article HTML.")
@click.option("--no-images", is_flag=True, help="Leave images out.")
@click.option("--embargo-minutes", type=int, default=0, show_default=True, help="Articles appear this long after publication.")
@click.option("--utm", multiple=True, metavar="NAME=VALUE",
              help="A UTM parameter for every link (repeatable; default utm_source=SLUG, utm_medium=syndication).")
@click.option("--no-utm", is_flag=True, help="No UTM parameters at all.")
@click.option("--attribution", default=None, help="The line ending every item (default: names the site).")
@click.option("--callback-url", default=None, help="Push new articles here (signed POSTs).")
@click.option("--callback-secret", default=None, help="The HMAC secret pushes are signed with (16+ characters).")
@click.option("--rate-limit", type=int, default=60, show_default=True, help="Requests per minute; 0 = no limit.")
@config_option
@click.pass_context
def partners_add(ctx: click.Context, slug: str, name: str, categories: str, summary_only: bool, no_images: bool,
                 embargo_minutes: int, utm: tuple[str, ...], no_utm: bool, attribution: str | None,
                 callback_url: str | None, callback_secret: str | None, rate_limit: int) -> None:
    """Add a partner outside the configuration file; prints its first key, once."""
    services = components_of(ctx)
    pairs = [item.partition("=") for item in utm]
    if any(not sep for _, sep, _ in pairs):
        raise click.BadParameter("write NAME=VALUE, e.g. utm_campaign=syndication", param_hint="--utm")
    raw = {"slug": slug, "name": name, "categories": [c.strip() for c in categories.split(",") if c.strip()],
           "full_content": not summary_only, "include_images": not no_images, "embargo_minutes": embargo_minutes,
           "utm": {} if no_utm else ({k: v for k, _, v in pairs} if pairs else None), "attribution": attribution,
           "callback_url": callback_url, "callback_secret": callback_secret, "rate_limit": rate_limit}
    try:
        chosen = build_partner("partner", {k: v for k, v in raw.items() if v is not None},
                               {c.slug for c in services.settings.categories})
    except ConfigError as exc:
        option = exc.key.split(".")[1].split("[")[0].replace("_", "-") if "." in exc.key else "partner"
        raise click.UsageError(f"--{option}: {exc.reason}") from None
    services.prepare_database(migrate=False)
    partner = services.partners.create(chosen, services.clock())
    info, key = services.partners.add_key(partner.slug, services.clock(), label="first")
    click.echo(f"added partner {partner.slug} ({partner.name}); its key {info.id}, shown this once:", err=True)
    click.echo(key)


@partners_group.command("list")
@config_option
@click.pass_context
def partners_list(ctx: click.Context) -> None:
    """Every partner: licence, keys (never the keys themselves), pushes, today's usage."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    tz, now = services.settings.site.timezone, services.clock()
    for p in services.partners.partners():
        content = ("full content" if p.full_content else "summaries") + (", images" if p.include_images else ", no images")
        click.echo(f"{p.slug} ({p.name}) [{p.origin}]: {', '.join(p.categories)}; {content}; embargo "
                   f"{p.embargo_minutes}m; " + (f"{p.rate_limit}/min" if p.rate_limit else "no rate limit"))
        for k in services.partners.keys(p.slug):
            state = f"revoked {k.revoked_at.astimezone(tz):%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            used = f"{k.last_used_at.astimezone(tz):%Y-%m-%d %H:%M}" if k.last_used_at else "never"
            click.echo(f"  key {k.id} ({k.label or '-'}) {k.fingerprint}…: {state}, last used {used}")
        if p.callback_url:
            counts = services.pushes.counts(p.slug)
            click.echo(f"  push to {p.callback_url}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        today = next(iter(services.partners.usage(p.slug, now=now, days=1)), None)
        if today:
            click.echo(f"  today: {today.requests} requests ({today.not_modified} not modified), {today.articles} "
                       f"articles, {today.bytes} bytes, {today.clicks} clicks back")


@partners_group.group("key")
def partners_key_group() -> None:
    """A partner's keys: several may be active at once, so rotate by creating, then revoking."""


@partners_key_group.command("create")
@click.argument("slug")
@click.option("--label", default=None, help="What the key is for, e.g. the partner's server.")
@config_option
@click.pass_context
def partners_key_create(ctx: click.Context, slug: str, label: str | None) -> None:
    """Create a key for SLUG and print it, once: only its hash is kept."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    info, key = services.partners.add_key(slug, services.clock(), label=label)
    click.echo(f"key {info.id} for {slug}, shown this once:", err=True)
    click.echo(key)


@partners_key_group.command("revoke")
@click.argument("slug")
@click.argument("key")
@config_option
@click.pass_context
def partners_key_revoke(ctx: click.Context, slug: str, key: str) -> None:
    """Revoke KEY (its id from `partners list`, or the key itself) of SLUG, at once."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    info = services.partners.revoke_key(slug, key, services.clock())
    if info is None:
        raise click.ClickException(f"partner {slug!r} has no such key")
    click.echo(f"revoked key {info.id} ({info.label or '-'}) of {slug}")


# --- console users ----------------------------------------------------------------------------------------------

CLI_ACTOR = Actor("cli", "gazette (command line)", "admin")


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users_group() -> None:
    """Console accounts: viewer reads; editor manages sources, editions, alerts and subscribers' data requests;
    admin also users, partners and keys."""


@users_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input "
                                                     "instead of asking for it.")
@click.option("--if-missing", is_flag=True, help="Do nothing (exit 0) when the account exists already.")
@config_option
@click.pass_context
def users_add(ctx: click.Context, email: str, role: str, password_stdin: bool, if_missing: bool) -> None:
    """Create a console account (the password is asked for, at least 10 characters)."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    if if_missing and any(u.email == normalise_address(email) for u in services.accounts.users()):
        click.echo(f"{normalise_address(email)} has an account already: unchanged")
        return
    user = services.accounts.add(email, role, _password(password_stdin))
    services.audit.record(CLI_ACTOR, "user.create", f"user:{user.email}", after={"role": user.role})
    click.echo(f"added {user.email} ({user.role}): log in at {services.settings.site.base_url.rstrip('/')}/admin")


@users_group.command("list")
@config_option
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Every console account with its role, last login and lock."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    tz, now = services.settings.site.timezone, services.clock()
    users = services.accounts.users()
    for u in users:
        last = local_time(u.last_login_at, tz) if u.last_login_at else "never"
        locked = f"; locked until {local_time(u.locked_until, tz)}" if u.locked_until and u.locked_until > now else ""
        click.echo(f"{u.email}\t{u.role}\tlast login {last}{locked}")
    if not users:
        click.echo("no console accounts: add one with `gazette users add EMAIL --role admin`")


@users_group.command("remove")
@click.argument("email")
@config_option
@click.pass_context
def users_remove(ctx: click.Context, email: str) -> None:
    """Delete a console account and end its sessions (its entries in the audit log stay)."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    user = services.accounts.remove(email)
    services.audit.record(CLI_ACTOR, "user.remove", f"user:{user.email}", before={"role": user.role})
    click.echo(f"removed {user.email}")


@users_group.command("reset-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of standard input.")
@config_option
@click.pass_context
def users_reset_password(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Set a new password, end every session of the account and lift a lock."""
    services = components_of(ctx)
    services.prepare_database(migrate=False)
    user = services.accounts.reset_password(email, _password(password_stdin))
    services.audit.record(CLI_ACTOR, "user.reset_password", f"user:{user.email}")
    click.echo(f"new password set for {user.email}; every session of it ended")


@click.group("articles")
def articles_group() -> None:
    """Correct, hold or kill a published story."""


def _story(services: Any, url_or_id: str) -> Any:
    services.prepare_database(migrate=False)
    article = services.store.find_article(url_or_id)
    if article is None:
        raise click.UsageError(f"no article {url_or_id!r} (give its id or its URL)")
    return article



@articles_group.command("show")
@click.argument("article")
@config_option
@click.pass_context
def articles_show(ctx: click.Context, article: str) -> None:
    """ARTICLE (id or URL): its status, corrections and the partners that have it."""
    services = components_of(ctx)
    story = _story(services, article)
    tz = services.settings.site.timezone
    since = f" since {local_time(story.status_at, tz)}" if story.status_at else ""
    click.echo(f"{story.id}\t{story.title}\n{story.status}{since}{'; urgent' if story.is_urgent else ''}"
               f"{': ' + story.status_reason if story.status_reason else ''}\nrevision {story.revision}")
    for c in story.corrections:
        click.echo(f"corrected {local_time(c.corrected_at, tz)}: {c.note}")
    for slug, at in services.pushes.received(story.id):
        click.echo(f"partner {slug}: {'pushed ' + local_time(at, tz) if at else 'took it in a feed'}")


def _change(ctx: click.Context, article: str, action: str, change: Any) -> None:
    from .article_life import ArticleLife, life_record

    services = components_of(ctx)
    before = _story(services, article)
    after = change(ArticleLife(services.engine), before.id, services.clock())
    services.audit.record(CLI_ACTOR, action, f"article:{after.id}", before=life_record(before),
                          after=life_record(after))
    click.echo(f"{after.id}\t{after.status}\trevision {after.revision}")


@articles_group.command("correct")
@click.argument("article")
@click.option("--note", required=True, help="The correction readers see under the story.")
@config_option
@click.pass_context
def articles_correct(ctx: click.Context, article: str, note: str) -> None:
    """Publish a correction: a new revision, the note in every feed, partners that have it told."""
    _change(ctx, article, "article.correct", lambda life, id_, now: life.correct(id_, note, by="cli", now=now))


@articles_group.command("kill")
@click.argument("article")
@click.option("--reason", required=True, help="Why (the newsroom's and its partners', not shown to readers).")
@config_option
@click.pass_context
def articles_kill(ctx: click.Context, article: str, reason: str) -> None:
    """Withdraw a story for good: out of every feed, digest and partner feed; partners that have it told."""
    _change(ctx, article, "article.kill", lambda life, id_, now: life.kill(id_, reason, now=now))


@articles_group.command("hold")
@click.argument("article")
@click.option("--reason", required=True)
@config_option
@click.pass_context
def articles_hold(ctx: click.Context, article: str, reason: str) -> None:
    """Keep a live story out of everything until it is released."""
    _change(ctx, article, "article.hold", lambda life, id_, now: life.hold(id_, reason, now=now))


@articles_group.command("release")
@click.argument("article")
@config_option
@click.pass_context
def articles_release(ctx: click.Context, article: str) -> None:
    """Put a held story back."""
    _change(ctx, article, "article.release", lambda life, id_, now: life.release(id_, now=now))

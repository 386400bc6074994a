"""The `push` commands: `push keys` makes the VAPID key pair breaking alerts by Web Push are signed with.

It needs no configuration (the key comes before the [push] section that names it): it writes the private key as PEM
to a new file only its owner can read, and prints the public key the subscribe snippet uses and the lines to add.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..push_keys import new_vapid_key, public_key_of, write_vapid_key


@click.group("push")
def push_group() -> None:
    """Breaking alerts by Web Push ([push]; docs/push.md)."""


@push_group.command("keys")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("var/vapid.pem"),
              show_default=True, help="Where the private key goes (PEM, mode 0600).")
@click.option("--force", is_flag=True, help="Replace the file if there is one (every browser must subscribe again).")
def push_keys(out: Path, force: bool) -> None:
    """Make a VAPID key pair (P-256): the private key to --out, the public key and the [push] lines printed."""
    key = new_vapid_key()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_vapid_key(out, key, force=force)
    except FileExistsError:
        raise click.UsageError(f"{out} exists: a new key unsubscribes every browser; give --force to replace it") \
            from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote the private key to {out} (mode 0600); keep it: a new key means every browser subscribes again")
    click.echo(f"public key (applicationServerKey): {public_key_of(key)}")
    click.echo("")
    click.echo("[push]")
    click.echo(f'vapid_private_key_file = "{out}"')
    click.echo('vapid_subject = "mailto:newsroom@example.com"  # who push services may write to')

"""``flask`` commands of the vault: retention purge and key rotation (cron-safe, resumable)."""

from __future__ import annotations

import base64
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ticketing.crypto.keys import (
    format_master_keys,
    new_blind_index_key,
    new_master_key_entry,
    parse_master_keys,
    update_key_file,
)
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy import services
from ticketing.privacy.links import person_links


def register(app: Flask) -> None:
    app.cli.add_command(purge_personal_data)
    app.cli.add_command(rotate_master_key)
    app.cli.add_command(rotate_blind_index_key)


def _key_file() -> Path:
    return Path(current_app.instance_path) / "keys.json"


def _reload() -> None:
    from ticketing import reload_keyring

    reload_keyring(current_app)


@click.command("purge-personal-data")
@click.option("--batch-size", default=services.BATCH, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
def purge_personal_data(batch_size: int) -> None:
    """Erase everyone whose events are all past retention (idempotent; run from cron)."""
    now = utcnow()
    total = services.count_persons_to_check(db.session)
    db.session.rollback()
    erased = 0
    skipped: list[str] = []
    with click.progressbar(length=total, label="Checking persons", show_pos=True) as bar:
        for batch in services.purge_expired_persons(db.session, person_links(), now=now, batch_size=batch_size):
            erased += batch.erased
            skipped.extend(str(person_id) for person_id in batch.skipped)
            bar.update(batch.checked)
    services.forget_spent_links(db.session, now)
    click.echo(f"Erased {erased} person(s) past retention; {total - erased} kept.")
    if skipped:
        click.echo(
            f"{len(skipped)} person(s) kept because their event's retention date is out of range "
            f"(fix the event's dates): {', '.join(skipped)}",
            err=True,
        )


@click.command("rotate-master-key")
@click.option("--batch-size", default=services.BATCH, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--remove-old", is_flag=True, help="Development key file only: drop the old master keys afterwards.")
@with_appcontext
def rotate_master_key(batch_size: int, remove_old: bool) -> None:
    """Re-wrap every data key with the newest master key, adding one first if needed.

    From the environment (production), put the new key last in TICKETING_MASTER_KEYS and
    restart before running this. With the development key file, a new key is appended to
    instance/keys.json. An interrupted run is finished by running it again.
    """
    config = current_app.extensions["guichet.config"]
    pending = services.count_data_keys_to_rewrap(db.session, keyring())
    db.session.rollback()
    if pending == 0:
        if config.MASTER_KEYS:
            click.echo(
                f"Every data key is already wrapped by master key {keyring().newest_master_key_id}. "
                "To rotate, append a new key last to TICKETING_MASTER_KEYS (`flask generate-keys` prints one), "
                "restart the app, and run this again."
            )
            return
        keys = dict(keyring().master_keys)
        key_id, _sep, encoded = new_master_key_entry().partition(":")
        keys.update(parse_master_keys(f"{key_id}:{encoded}"))
        update_key_file(_key_file(), {"master_keys": format_master_keys(keys)})
        _reload()
        click.echo(f"Added master key {key_id} to {_key_file()}.")
        pending = services.count_data_keys_to_rewrap(db.session, keyring())
        db.session.rollback()
    with click.progressbar(length=pending, label="Re-wrapping data keys", show_pos=True) as bar:
        for done in services.rewrap_data_keys(db.session, keyring(), batch_size=batch_size):
            bar.update(done)
    newest = keyring().newest_master_key_id
    old = [key_id for key_id in keyring().master_keys if key_id != newest]
    click.echo(f"Every data key is wrapped by master key {newest}.")
    if old and remove_old and not config.MASTER_KEYS:
        update_key_file(_key_file(), {"master_keys": format_master_keys({newest: keyring().master_keys[newest]})})
        _reload()
        click.echo(f"Removed old master key(s) {', '.join(old)} from {_key_file()}.")
    elif old and config.MASTER_KEYS:
        click.echo(f"Old master key(s) {', '.join(old)} can now be removed from TICKETING_MASTER_KEYS.")
    elif old:
        click.echo(f"Old master key(s) {', '.join(old)} can now be removed: rerun with --remove-old.")


@click.command("rotate-blind-index-key")
@click.option("--batch-size", default=services.BATCH, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
def rotate_blind_index_key(batch_size: int) -> None:
    """Rebuild the email blind index with the current key, creating a new key if needed.

    While it runs, lookups try the new key and then the previous ones, so buyers are still
    found. From the environment (production): set TICKETING_BLIND_INDEX_KEY to the new key
    and TICKETING_PREVIOUS_BLIND_INDEX_KEYS to the old one, restart, run this, then remove
    the previous key. An interrupted run is finished by running it again.
    """
    config = current_app.extensions["guichet.config"]
    pending = services.count_persons_to_reindex(db.session, keyring())
    db.session.rollback()
    if pending == 0 and not keyring().previous_blind_index_keys:
        if config.BLIND_INDEX_KEY:
            click.echo(
                "The blind index is up to date. To rotate, set TICKETING_BLIND_INDEX_KEY to a new key and "
                "TICKETING_PREVIOUS_BLIND_INDEX_KEYS to the old one, restart the app, and run this again."
            )
            return
        ring = keyring()
        old = ",".join(
            [
                *(k for k in (config.PREVIOUS_BLIND_INDEX_KEYS or "").split(",") if k),
                _encoded(ring.blind_index_key),
            ]
        )
        update_key_file(_key_file(), {"blind_index_key": new_blind_index_key(), "previous_blind_index_keys": old})
        _reload()
        click.echo(f"New blind-index key {keyring().blind_index_key_id} written to {_key_file()}.")
        pending = services.count_persons_to_reindex(db.session, keyring())
        db.session.rollback()
    with click.progressbar(length=pending, label="Rebuilding the blind index", show_pos=True) as bar:
        for done in services.rebuild_blind_index(db.session, keyring(), batch_size=batch_size):
            bar.update(done)
    click.echo(f"The blind index is built with key {keyring().blind_index_key_id}.")
    if not config.BLIND_INDEX_KEY and _key_file().exists():
        update_key_file(_key_file(), {"previous_blind_index_keys": ""})
        _reload()
    elif keyring().previous_blind_index_keys:
        click.echo("TICKETING_PREVIOUS_BLIND_INDEX_KEYS can now be removed from the configuration.")


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

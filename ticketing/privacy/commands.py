"""``flask`` commands of the vault: retention purge and key rotation (cron-safe, resumable)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ticketing.crypto.keys import (
    format_master_keys,
    key_file_lock,
    master_key_created_on,
    new_blind_index_key,
    new_master_key_entry,
    parse_master_keys,
    update_key_file,
)
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy import services
from ticketing.privacy.person_links import person_links

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    app.cli.add_command(purge_personal_data)
    app.cli.add_command(rotate_master_key)
    app.cli.add_command(destroy_master_key)
    app.cli.add_command(master_keys_status)
    app.cli.add_command(rotate_blind_index_key)


def _key_file() -> Path:
    return Path(current_app.instance_path) / "keys.json"


def _reload() -> None:
    """The app factory put its key loader here: the vault must not import the app package."""
    current_app.extensions["guichet.reload_keyring"]()


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
@click.option("--new-key", is_flag=True, help="Start a new master-key epoch now, even if it is not due.")
@click.option("--remove-old", is_flag=True, help="Development key file: destroy unused old keys now, not a day later.")
@with_appcontext
def rotate_master_key(batch_size: int, new_key: bool, remove_old: bool) -> None:
    """Keep master-key epochs: re-wrap every data key under the newest master key (run it
    daily from cron), and say when a new epoch is due.

    With the development key file it does every step itself: it adds a new key when the
    newest is 14 days old and destroys an old key once no data key uses it and every
    process has had a day to load its successor. With keys from the environment it
    re-wraps and reports; `--new-key` prints the next TICKETING_MASTER_KEYS (the newest
    key kept, the new one appended, unused old ones dropped) to set on every app host
    before restarting them. Resumable: an interrupted run is finished by the next.
    """
    today = utcnow().date()
    if not current_app.extensions["guichet.config"].MASTER_KEYS:
        with key_file_lock(_key_file()):
            _reload()
            if new_key or today >= services.master_key_schedule(keyring(), today).next_epoch_on:
                _add_master_key_to_file(today)
            _rewrap(batch_size)
            _destroy_retired_keys_in_file(today, now=remove_old)
        _report_schedule(today)
        return
    _rewrap(batch_size)
    ring = keyring()
    retired = [key_id for key_id in ring.master_keys if key_id != ring.newest_master_key_id]
    if new_key:
        try:
            services.check_master_keys_unused(db.session, retired)
        except services.MasterKeyInUse as error:
            raise click.ClickException(str(error)) from None
        entry = new_master_key_entry(today)
        kept = format_master_keys({ring.newest_master_key_id: ring.master_keys[ring.newest_master_key_id]})
        log.info("new master key %s made; old key(s) %s dropped", entry.partition(":")[0], ", ".join(retired) or "none")
        click.echo(
            "Set this on every app host, replacing the old value, then restart them all "
            f"(old key(s) {', '.join(retired) or 'none'} dropped; backup copies under them no longer open):"
        )
        click.echo(f"TICKETING_MASTER_KEYS={kept},{entry}")
        return
    if retired and not _keys_in_use(retired):
        click.echo(
            f"Old master key(s) {', '.join(retired)} can now be removed from TICKETING_MASTER_KEYS "
            "(`flask destroy-master-key ID` prints the value without it; the next `--new-key` drops it too)."
        )
    _report_schedule(today)


def _rewrap(batch_size: int) -> None:
    pending = services.count_data_keys_to_rewrap(db.session, keyring())
    db.session.rollback()
    if pending:
        with click.progressbar(length=pending, label="Re-wrapping data keys", show_pos=True) as bar:
            for done in services.rewrap_data_keys(db.session, keyring(), batch_size=batch_size):
                bar.update(done)
    click.echo(f"Every data key is wrapped by master key {keyring().newest_master_key_id}.")


def _keys_in_use(key_ids: list[str]) -> bool:
    try:
        services.check_master_keys_unused(db.session, key_ids)
    except services.MasterKeyInUse:
        return True
    return False


def _add_master_key_to_file(today: dt.date) -> None:
    keys = dict(keyring().master_keys)
    key_id, _sep, encoded = new_master_key_entry(today).partition(":")
    keys.update(parse_master_keys(f"{key_id}:{encoded}"))
    update_key_file(_key_file(), {"master_keys": format_master_keys(keys)})
    _reload()
    log.info("master key %s added to the key file", key_id)
    click.echo(f"Added master key {key_id} to {_key_file()}.")


def _destroy_retired_keys_in_file(today: dt.date, *, now: bool) -> None:
    """Destroy the retired keys no data key uses. A key is kept until the key that
    replaced it is a day old: every running process reloads the key file when it
    changes, so by then none of them still wraps new data keys with the retired one."""
    order = list(keyring().master_keys)
    destroyed = []
    for key_id in order[:-1]:
        successor_on = master_key_created_on(order[order.index(key_id) + 1])
        settled = successor_on is None or successor_on < today
        if (now or settled) and not _keys_in_use([key_id]):
            destroyed.append(key_id)
    if destroyed:
        _remove_keys_from_file(destroyed)


def _remove_keys_from_file(key_ids: list[str]) -> None:
    keys = {key_id: raw for key_id, raw in keyring().master_keys.items() if key_id not in key_ids}
    update_key_file(_key_file(), {"master_keys": format_master_keys(keys)})
    _reload()
    log.info("master key(s) %s destroyed", ", ".join(key_ids))
    click.echo(f"Destroyed old master key(s) {', '.join(key_ids)}: removed from {_key_file()}.")


def _report_schedule(today: dt.date) -> None:
    """Say where the epochs stand; exit 1 when overdue, so that cron mails it."""
    schedule = services.master_key_schedule(keyring(), today)
    if schedule.state == "ok":
        click.echo(f"Next master-key epoch due on {schedule.next_epoch_on.isoformat()}.")
        return
    from_file = not current_app.extensions["guichet.config"].MASTER_KEYS
    step = "run `flask rotate-master-key`" if from_file else "run `flask rotate-master-key --new-key` and follow it"
    if schedule.state == "due":
        log.warning("a new master-key epoch is due since %s", schedule.next_epoch_on.isoformat())
        click.echo(f"A new master-key epoch is due since {schedule.next_epoch_on.isoformat()}: {step}.")
        return
    log.error("master keys overdue: backup copies of erased persons' data keys still open")
    raise click.ClickException(
        "A master key is older than "
        f"{services.MASTER_KEY_MAX_DAYS} days (or of unknown age): copies of erased persons' data keys in "
        f"backups still open with it. To end that, {step}, then again once it is due."
    )


@click.command("destroy-master-key")
@click.argument("key_id")
@with_appcontext
def destroy_master_key(key_id: str) -> None:
    """Destroy one old master key; refused while a data key still uses it.

    With the development key file the key is removed from it; with keys from the
    environment the new TICKETING_MASTER_KEYS (without it) is printed, to set and restart.
    """
    ring = keyring()
    if key_id not in ring.master_keys:
        raise click.ClickException(f"master key {key_id} is not configured")
    if key_id == ring.newest_master_key_id:
        raise click.ClickException(f"master key {key_id} is the newest; start a new epoch first")
    try:
        services.check_master_keys_unused(db.session, [key_id])
    except services.MasterKeyInUse as error:
        raise click.ClickException(str(error)) from None
    if not current_app.extensions["guichet.config"].MASTER_KEYS:
        with key_file_lock(_key_file()):
            _remove_keys_from_file([key_id])
        return
    kept = format_master_keys({k: raw for k, raw in ring.master_keys.items() if k != key_id})
    click.echo("Set this on every app host, replacing the old value, then restart them all:")
    click.echo(f"TICKETING_MASTER_KEYS={kept}")


@click.command("master-keys")
@with_appcontext
def master_keys_status() -> None:
    """List the master keys: day made, data keys each wraps, what to do next (exit 1 when
    the bound is broken: a key too old, or data keys under a key no longer configured)."""
    ring = keyring()
    today = utcnow().date()
    counts = services.count_data_keys_by_master_key(db.session)
    db.session.rollback()
    for key_id in [*ring.master_keys, *(k for k in counts if k not in ring.master_keys)]:
        made_on = master_key_created_on(key_id)
        if key_id not in ring.master_keys:
            role = "NOT CONFIGURED: these data keys cannot be opened"
        else:
            role = "newest" if key_id == ring.newest_master_key_id else "retired"
        made = made_on.isoformat() if made_on else "unknown day"
        click.echo(f"{key_id}  made {made}  wraps {counts.get(key_id, 0)} data key(s)  {role}")
    lost = sum(count for key_id, count in counts.items() if key_id not in ring.master_keys)
    if lost:
        raise click.ClickException(f"{lost} data key(s) are wrapped by a master key that is not configured")
    _report_schedule(today)


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

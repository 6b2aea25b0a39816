"""``flask`` commands for operators: demo, organisers, hold expiry, keys, refunds, mail."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import threading
from contextlib import nullcontext
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.serving import run_simple

from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.services import create_organizer
from ticketing.checkout.stock import release_expired_holds
from ticketing.crypto.keys import key_environ
from ticketing.extensions import db, keyring
from ticketing.mail.queue import (
    MAX_ATTEMPTS,
    DeliveryReport,
    deliver_mail,
    due_mail_ids,
    follow_mail_queue,
    mail_kinds,
    queue_state,
    send_queued_mail_now,
)
from ticketing.models import begin_write, utcnow
from ticketing.privacy.commands import register as register_privacy_commands
from ticketing.web import link_context
from ticketing.worker import work

DEMO_ORGANIZER = "Demo venue (Guichet)"
DEMO_DEVICE = "Demo door"


def register_commands(app: Flask) -> None:
    app.cli.add_command(demo)
    app.cli.add_command(create_organizer_command)
    app.cli.add_command(expire_holds)
    app.cli.add_command(generate_keys)
    register_privacy_commands(app)
    app.cli.add_command(rotate_signing_key)
    app.cli.add_command(process_refunds)
    app.cli.add_command(reconcile_payments)
    app.cli.add_command(send_mail_command)
    app.cli.add_command(worker_command)


@click.command("create-organizer")
@with_appcontext
@click.argument("name")
def create_organizer_command(name: str) -> None:
    """Create an organiser and print their API token (shown once; only its hash is kept)."""
    organizer, token = create_organizer(db.session, name, utcnow())
    click.echo(f"Organiser {organizer.name!r} created (id {organizer.id}).")
    click.echo(f"API token (store it now, it is not shown again): {token}")


@click.command("expire-holds")
@with_appcontext
def expire_holds() -> None:
    """Give expired holds back to the stock (run from cron, e.g. every minute)."""
    released = release_expired_holds(db.session, utcnow())
    click.echo(f"Released {released} expired hold(s).")


@click.command("process-refunds")
@with_appcontext
def process_refunds() -> None:
    """Refund cancelled orders whose choice time is over, send pending refunds, retry failed ones."""
    from ticketing.payments.services import refund_due_choices, refunds_to_send, send_refund

    now = utcnow()
    decided = refund_due_choices(db.session, now)
    to_send = refunds_to_send(db.session)
    provider = current_app.extensions["guichet.payments"]
    outcomes: dict[str, int] = {}
    with click.progressbar(to_send, label="Sending refunds", show_pos=True) as refund_ids:
        for refund_id in refund_ids:
            status = send_refund(db.session, provider, refund_id, now)
            outcomes[status] = outcomes.get(status, 0) + 1
    click.echo(f"{decided} order(s) refunded by default after the choice deadline.")
    click.echo(
        f"{len(to_send)} refund(s) sent: " + (", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())) or "none")
    )
    if outcomes.get("failed"):
        click.echo("Failed refunds stay listed for the organiser (GET /api/v1/events/<id>/refunds) and are retried.")


@click.command("reconcile-payments")
@with_appcontext
def reconcile_payments() -> None:
    """Ask Stripe about every order pending past its hold, for when webhooks were lost."""
    from ticketing.payments.notify import send_refunds
    from ticketing.payments.services import apply_checkout_session, orders_to_reconcile
    from ticketing.payments.stripe import PaymentProviderError, StripeProvider

    provider = current_app.extensions["guichet.payments"]
    if not isinstance(provider, StripeProvider):
        raise click.ClickException("reconcile-payments needs the stripe provider (STRIPE_SECRET_KEY)")
    now = utcnow()
    orders = orders_to_reconcile(db.session, provider.name, now)
    counts = {"paid": 0, "refunded": 0, "expired": 0, "unchanged": 0, "unreachable": 0}
    with click.progressbar(orders, label="Asking Stripe", show_pos=True) as rows:
        for _order_id, session_ref in rows:
            try:
                checkout = provider.retrieve_checkout_session(session_ref)
            except PaymentProviderError:
                counts["unreachable"] += 1
                continue
            state = checkout.get("status")
            kind = {"complete": "checkout.session.completed", "expired": "checkout.session.expired"}.get(str(state))
            if kind is None:
                counts["unchanged"] += 1
                continue
            outcome = apply_checkout_session(db.session, checkout, kind, now)
            with link_context(current_app):  # mails sent inline carry links
                send_refunds(outcome.refund_ids, now)
                send_queued_mail_now(db.session)
            if outcome.paid_order_id:
                counts["paid"] += 1
            elif outcome.refund_ids:
                counts["refunded"] += 1
            elif kind.endswith("expired"):
                counts["expired"] += 1
            else:
                counts["unchanged"] += 1
    click.echo(f"{len(orders)} order(s) checked: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


def _send_due_mail(show_progress: bool, stop: threading.Event | None = None) -> DeliveryReport:
    """Every job due now, each claimed at its own ``now`` (a long run must not claim with a
    time that is minutes old: its lease would already be running out). ``stop`` ends the
    run between two mails."""
    app = current_app._get_current_object()
    job_ids = due_mail_ids(db.session, utcnow())
    report = DeliveryReport()
    bar = click.progressbar(job_ids, label="Sending mail", show_pos=True) if show_progress else nullcontext(job_ids)
    with bar as jobs:
        for job_id in jobs:
            if stop is not None and stop.is_set():
                break
            report += deliver_mail(db.session, mail_kinds(), app.config, app.instance_path, utcnow(), ids=[job_id])
    return report


def _report_line(report: DeliveryReport) -> str:
    return (
        f"{report.sent} sent, {report.failed} failed (retried later), {report.given_up} given up, "
        f"{report.dropped} dropped (nothing to send any more)"
    )


@click.command("send-mail")
@with_appcontext
@click.option("--follow", is_flag=True, help="Keep sending as mail is queued, until Ctrl-C or SIGTERM.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="With --follow: seconds between looks at the queue.",
)
def send_mail_command(follow: bool, interval: float) -> None:
    """Send the queued mails that are due: tickets, late-payment refunds, cancellations.

    A failed mail is retried later (1 minute, doubling, at most 6 hours apart) and given
    up after 20 attempts. With TICKETING_MAIL_DELIVERY=worker, run it with --follow
    beside the app; with inline delivery, run it from cron to retry failures.
    """
    with link_context(current_app):
        if not follow:
            report = _send_due_mail(show_progress=True)
            click.echo(_report_line(report) + ".")
        else:
            report = _follow_mail_queue(interval)
            click.echo(f"Stopped. In all: {_report_line(report)}.")
    state = queue_state(db.session, utcnow())
    click.echo(f"{state.due} mail(s) due now; {state.given_up} given up after {MAX_ATTEMPTS} attempts (in mail_queue).")


def _follow_mail_queue(interval: float) -> DeliveryReport:
    """The worker loop. Ctrl-C and SIGTERM (systemd's stop) finish the mail being sent, then
    stop: killed mid-send, a mail would wait for its claim to lapse and might go twice."""
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f"Sending queued mail every {interval:g} s; Ctrl-C stops.")

    def echo_round(report: DeliveryReport) -> None:
        if report.handled:
            click.echo(f"{utcnow():%H:%M:%S} {_report_line(report)}")

    try:
        return follow_mail_queue(
            db.session, lambda: _send_due_mail(show_progress=False, stop=stop), interval, stop, on_round=echo_round
        )
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.command("worker")
@with_appcontext
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between two rounds (mail, then whatever job is due).",
)
@click.option("--once", is_flag=True, help="One round, then stop.")
def worker_command(interval: float, once: bool) -> None:
    """Send queued mail and run the periodic jobs, until Ctrl-C or SIGTERM.

    Jobs: expire-holds every minute, reconcile-payments every 15 minutes (with Stripe),
    process-refunds every hour, purge-personal-data and rotate-master-key every day. Each
    is claimed in the database before it runs, so several workers (one per host) never
    run a job twice. SIGTERM (systemd's stop) lets the mail or job under way finish.
    """
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    app = current_app._get_current_object()
    if not once:
        click.echo(f"Worker started: mail every {interval:g} s, jobs when due; Ctrl-C stops.")
    try:
        with link_context(app):
            work(app, db.session, lambda: _send_due_mail(show_progress=False, stop=stop), stop, interval, utcnow, once)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not once:
        click.echo("Worker stopped.")


@click.command("generate-keys")
@with_appcontext
def generate_keys() -> None:
    """Print fresh production keys as environment lines (nothing is stored)."""
    for variable, value in key_environ().items():
        click.echo(f"{variable}={value}")


@click.command("rotate-signing-key")
@with_appcontext
@click.option(
    "--expire-after-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Stop accepting tickets signed with the old key after this many days (default: never).",
)
def rotate_signing_key(expire_after_days: int | None) -> None:
    """Publish the current ticket signing key as retired, and make a new one.

    The old public key stays at /api/v1/checkin/keys (table published_key), so tickets
    already sent keep scanning. With keys from the environment, set the printed
    TICKETING_SIGNING_KEY and restart; with the development key file, it is rewritten.
    """
    from ticketing.crypto import new_signing_key_value
    from ticketing.tickets.services import retire_signing_key

    now = utcnow()
    expires_at = now + dt.timedelta(days=expire_after_days) if expire_after_days else None
    ring = keyring()
    retire_signing_key(db.session, ring, now, expires_at)
    value = new_signing_key_value()
    click.echo(
        f"Key {ring.signing_key_id} retired; its public key stays published"
        + (f" until {expires_at:%Y-%m-%d}." if expires_at else ".")
    )
    key_file = Path(current_app.instance_path) / "keys.json"
    if not current_app.config.get("SIGNING_KEY") and key_file.exists():
        values = json.loads(key_file.read_text())
        values["signing_key"] = value
        temporary = key_file.with_name(key_file.name + ".new")
        temporary.write_text(json.dumps(values, indent=2))
        temporary.chmod(0o600)
        temporary.replace(key_file)
        click.echo(f"New key {value.split(':', 1)[0]} written to {key_file}; restart the app to sign with it.")
    else:
        click.echo("Set this in the environment and restart the app (shown once, not stored):")
        click.echo(f"TICKETING_SIGNING_KEY={value}")


def seed_demo_device(organizer: Organizer, events: list[Event], now: dt.datetime) -> str:
    """The demo's door device, paired for the in-person events; a fresh token each run
    (only its hash is kept, so the previous one cannot be shown again)."""
    from ticketing.checkin.devices import reissue_device_token
    from ticketing.checkin.models import Device

    device = db.session.execute(
        select(Device).where(Device.organizer_id == organizer.id, Device.name == DEMO_DEVICE)
    ).scalar()
    if device is None:
        begin_write(db.session)
        device = Device(
            organizer_id=organizer.id,
            name=DEMO_DEVICE,
            event_ids=[str(e.id) for e in events if e.mode != "livestream"],
            created_at=now,
        )
        db.session.add(device)
        db.session.commit()
    return reissue_device_token(db.session, device, now)


def seed_demo(now: dt.datetime) -> tuple[Organizer, str | None, list[Event]]:
    """Create the demo organiser and events once; later runs find and reuse them."""
    organizer = db.session.execute(select(Organizer).where(Organizer.name == DEMO_ORGANIZER)).scalar()
    token = None
    if organizer is None:
        organizer, token = create_organizer(db.session, DEMO_ORGANIZER, now)
    events = list(db.session.execute(select(Event).where(Event.organizer_id == organizer.id)).scalars())
    if events:
        return organizer, token, events
    day = (now + dt.timedelta(days=21)).replace(hour=19, minute=0, second=0, microsecond=0)
    begin_write(db.session)
    concert = Event(
        organizer_id=organizer.id,
        title="Les Ondes du Canal — concert",
        description="An evening of chamber music by the Canal du Midi. Standing and seated places.\n"
        "Une soirée de musique de chambre au bord du canal du Midi.",
        venue_name="Salle du Canal",
        venue_address="12 quai de la Daurade, 31000 Toulouse",
        starts_at=day,
        ends_at=day + dt.timedelta(hours=2, minutes=30),
        doors_at=day - dt.timedelta(minutes=30),
        timezone="Europe/Paris",
        mode="in_person",
        status="published",
        currency="EUR",
        ask_postcode=True,
        created_at=now,
        updated_at=now,
    )
    stream_day = (now + dt.timedelta(days=7)).replace(hour=18, minute=30, second=0, microsecond=0)
    livestream = Event(
        organizer_id=organizer.id,
        title="Festival Garonne — livestream",
        description="The opening night, streamed live. One screen per ticket.\n"
        "La soirée d'ouverture, en direct. Un écran par billet.",
        venue_name="Online / En ligne",
        starts_at=stream_day,
        ends_at=stream_day + dt.timedelta(hours=3),
        timezone="Europe/Paris",
        mode="livestream",
        status="published",
        currency="EUR",
        created_at=now,
        updated_at=now,
    )
    db.session.add_all([concert, livestream])
    db.session.flush()
    db.session.add_all(
        [
            TicketType(
                event_id=concert.id,
                name="Standard",
                price_cents=1800,
                fee_cents=90,
                capacity=120,
                position=0,
                created_at=now,
            ),
            TicketType(
                event_id=concert.id,
                name="Reduced / Réduit",
                price_cents=1000,
                fee_cents=50,
                capacity=40,
                max_per_order=4,
                position=1,
                created_at=now,
            ),
            TicketType(
                event_id=concert.id,
                name="Child / Enfant",
                price_cents=0,
                fee_cents=0,
                capacity=20,
                max_per_order=4,
                position=2,
                created_at=now,
            ),
            TicketType(
                event_id=livestream.id,
                name="Stream",
                price_cents=800,
                fee_cents=40,
                capacity=1000,
                grants_entry=False,
                grants_stream=True,
                created_at=now,
            ),
        ]
    )
    db.session.commit()
    return organizer, token, [concert, livestream]


def _host_name_of(address: str) -> str | None:
    """How a browser names the address the demo listens on; None for "every address"."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address.lower()
    if parsed.is_unspecified:
        return None
    return f"[{parsed}]" if parsed.version == 6 else str(parsed)


@click.command("demo")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-serve", is_flag=True, help="Prepare the database and demo data, then exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate, create keys and demo data (once), then serve the app."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    organizer, token, events = seed_demo(utcnow())
    base = f"http://{host}:{port}"
    name = _host_name_of(host)
    if not current_app.config["BASE_URL"] and name is not None:
        # The address it was told to listen on is one the demo answers (see TICKETING_ALLOWED_HOSTS).
        current_app.config["ALLOWED_HOSTS"] = (*current_app.config["ALLOWED_HOSTS"], name)
    click.echo(f"Instance folder: {current_app.instance_path} (database, keys, mail outbox)")
    click.echo(f"Payments: {current_app.config['PAYMENT_PROVIDER']} (test mode, no money moves)")
    if token:
        click.echo(f"Demo organiser API token (shown once): {token}")
    else:
        click.echo("Demo organiser exists; `flask --app wsgi create-organizer NAME` makes a new API token.")
    click.echo(f"\n  Events:      {base}/")
    for event in events:
        click.echo(f"  {event.title}: {base}/events/{event.id}")
    click.echo(f"  API:         {base}/api/v1/events  (described at {base}/api/v1/openapi.json)")
    click.echo(f"  Mail outbox: {current_app.instance_path}/outbox/")
    device_token = seed_demo_device(organizer, events, utcnow())
    click.echo(f"  Door scanner (paired demo device): {base}/door#token={device_token}")
    click.echo("  (the token is in the fragment: the browser keeps it, the server never logs it)\n")
    if not no_serve:
        # Flask.run() refuses to run inside a ``flask`` command; the server it wraps does not.
        run_simple(host, port, current_app._get_current_object(), threaded=True)

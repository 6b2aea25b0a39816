"""``flask`` commands for operators: demo, organisers, hold expiry, keys."""

from __future__ import annotations

import datetime as dt

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select
from werkzeug.serving import run_simple

from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.services import create_organizer
from ticketing.checkout.services import release_expired_holds
from ticketing.crypto import new_key_values
from ticketing.extensions import db
from ticketing.models import utcnow

DEMO_ORGANIZER = "Demo venue (Guichet)"


def register_commands(app: Flask) -> None:
    app.cli.add_command(demo)
    app.cli.add_command(create_organizer_command)
    app.cli.add_command(expire_holds)
    app.cli.add_command(generate_keys)
    app.cli.add_command(process_refunds)
    app.cli.add_command(reconcile_payments)


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
    from ticketing.payments.notify import finish_event
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
            # Mails carry links: url_for needs a request context outside a request.
            with current_app.test_request_context(base_url=current_app.config.get("BASE_URL") or "http://localhost/"):
                finish_event(outcome, now)
            if outcome.paid_order_id:
                counts["paid"] += 1
            elif outcome.refund_ids:
                counts["refunded"] += 1
            elif kind.endswith("expired"):
                counts["expired"] += 1
            else:
                counts["unchanged"] += 1
    click.echo(f"{len(orders)} order(s) checked: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@click.command("generate-keys")
@with_appcontext
def generate_keys() -> None:
    """Print fresh production keys as environment lines (nothing is stored)."""
    values = new_key_values()
    click.echo(f"TICKETING_SECRET_KEY={values['secret_key']}")
    click.echo(f"TICKETING_MASTER_KEYS={values['master_keys']}")
    click.echo(f"TICKETING_BLIND_INDEX_KEY={values['blind_index_key']}")
    click.echo(f"TICKETING_SIGNING_KEY={values['signing_key']}")


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
    click.echo(f"  Mail outbox: {current_app.instance_path}/outbox/\n")
    if not no_serve:
        # Flask.run() refuses to run inside a ``flask`` command; the server it wraps does not.
        run_simple(host, port, current_app._get_current_object(), threaded=True)

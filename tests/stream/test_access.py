"""Stream links: the window, revocation, and screens per ticket (newest wins or refuse)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from tests.stream.helpers import set_event, stream_ticket, void_ticket
from ticketing.crypto import new_token
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services
from ticketing.stream.errors import PlayingElsewhere, ScreenLimit, SessionExpired, StreamRefused
from ticketing.stream.models import ViewerSession


def policy(app):
    return app.extensions["guichet.stream_policy"]


def check(app, token, now):
    return services.check_stream_token(db.session, app.extensions["guichet.stream_keys"], token, policy(app), now)


def reason_of(app, token, now):
    with app.app_context(), pytest.raises(StreamRefused) as refused:
        services.require_open(check(app, token, now))
    return refused.value.reason


def test_link_opens_before_the_start_and_closes_after_the_grace(app, client):
    ticket = stream_ticket(app, client, starts_in=dt.timedelta(days=2))
    with app.app_context():
        access = check(app, ticket.token, utcnow())
    before, after = access.opens_at - dt.timedelta(seconds=1), access.closes_at

    assert access.opens_at == access.event.starts_at - dt.timedelta(minutes=30)
    assert access.closes_at == access.event.ends_at + dt.timedelta(minutes=30)
    assert reason_of(app, ticket.token, before) == "not_yet"
    assert reason_of(app, ticket.token, after) == "expired"
    with app.app_context():
        assert check(app, ticket.token, access.opens_at).is_open


def test_replay_window_keeps_the_link_open_longer(app, client):
    ticket = stream_ticket(app, client)
    with app.app_context():
        ends = check(app, ticket.token, utcnow()).event.ends_at
    set_event(app, ticket.event_id, stream_replay_until=ends + dt.timedelta(days=7))

    with app.app_context():
        assert check(app, ticket.token, ends + dt.timedelta(days=6)).is_open
    assert reason_of(app, ticket.token, ends + dt.timedelta(days=7, seconds=1)) == "expired"


def test_voided_ticket_and_cancelled_event_revoke_the_link(app, client):
    refunded, cancelled = stream_ticket(app, client), stream_ticket(app, client)
    void_ticket(app, refunded.ticket_id)
    set_event(app, cancelled.event_id, status="cancelled")

    assert reason_of(app, refunded.token, utcnow()) == "revoked"
    assert reason_of(app, cancelled.token, utcnow()) == "revoked"


def test_forged_token_is_invalid(app, client):
    ticket = stream_ticket(app, client)
    # Change the signature's first character: all six of its bits count. (The last one
    # has padding bits, so changing it can decode to the same signature.)
    start = ticket.token.rindex(".") + 1
    forged = ticket.token[:start] + ("A" if ticket.token[start] != "A" else "B") + ticket.token[start + 1 :]

    assert reason_of(app, forged, utcnow()) == "invalid"
    assert reason_of(app, "nonsense", utcnow()) == "invalid"


def start(app, token, now, cookie=None):
    with app.app_context():
        return services.start_viewer_session(db.session, check(app, token, now), cookie, policy(app), now)


def beat(app, ticket, cookie, now):
    with app.app_context():
        return services.heartbeat(db.session, ticket.ticket_id, cookie, policy(app), now)


def test_newest_screen_wins_and_the_older_one_is_told_at_its_heartbeat(app, client):
    ticket = stream_ticket(app, client)
    now = utcnow()
    _first, first_cookie = start(app, ticket.token, now)
    _second, second_cookie = start(app, ticket.token, now + dt.timedelta(seconds=5))

    later = now + dt.timedelta(seconds=30)

    with pytest.raises(PlayingElsewhere) as told:
        beat(app, ticket, first_cookie, later)
    assert told.value.message == "This ticket is now playing on another screen."
    assert beat(app, ticket, second_cookie, later).ended_at is None


def test_refuse_new_policy_keeps_the_first_screen(app, client):
    ticket = stream_ticket(app, client, stream_screen_policy="refuse_new")
    now = utcnow()
    _first, first_cookie = start(app, ticket.token, now)

    with pytest.raises(ScreenLimit):
        start(app, ticket.token, now + dt.timedelta(seconds=5))

    assert beat(app, ticket, first_cookie, now + dt.timedelta(seconds=30)).ended_at is None
    again, same_cookie = start(app, ticket.token, now + dt.timedelta(seconds=31), cookie=first_cookie)
    assert same_cookie == first_cookie  # a reload of the same screen keeps its place


def test_screen_without_heartbeat_expires_and_frees_its_place(app, client):
    ticket = stream_ticket(app, client, stream_screen_policy="refuse_new")
    now = utcnow()
    _first, first_cookie = start(app, ticket.token, now)
    lifetime = policy(app).session_lifetime

    _second, _cookie = start(app, ticket.token, now + lifetime)

    with pytest.raises(SessionExpired):
        beat(app, ticket, first_cookie, now + lifetime + dt.timedelta(seconds=1))


def test_two_screens_allowed_then_the_oldest_gives_way(app, client):
    ticket = stream_ticket(app, client, stream_max_screens=2)
    now = utcnow()
    cookies = [start(app, ticket.token, now + dt.timedelta(seconds=i))[1] for i in range(3)]

    later = now + dt.timedelta(seconds=20)

    with pytest.raises(PlayingElsewhere):
        beat(app, ticket, cookies[0], later)
    assert beat(app, ticket, cookies[1], later).ended_at is None
    assert beat(app, ticket, cookies[2], later).ended_at is None


def test_heartbeat_with_unknown_cookie_is_refused(app, client):
    ticket = stream_ticket(app, client)

    with pytest.raises(SessionExpired):
        beat(app, ticket, new_token(), utcnow())
    with pytest.raises(SessionExpired):
        beat(app, ticket, None, utcnow())


def test_screens_opening_at_once_take_exactly_the_allowed_places(app, client):
    ticket = stream_ticket(app, client, stream_screen_policy="refuse_new", stream_max_screens=2)
    now = utcnow()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def open_screen() -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                services.start_viewer_session(db.session, check(app, ticket.token, now), None, policy(app), now)
                result = "opened"
            except ScreenLimit:
                result = "refused"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=open_screen) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["opened"] * 2 + ["refused"] * 6
    with app.app_context():
        live = db.session.scalar(
            select(func.count()).select_from(ViewerSession).where(ViewerSession.ended_at.is_(None))
        )
        assert live == 2

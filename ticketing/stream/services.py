"""Stream rules: who may watch, when, and on how many screens.

Every check costs at most one indexed lookup: signatures and expiries are verified in
memory first (``ticketing.crypto.stream``), and only a genuine, unexpired credential
reaches the database, by primary key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ticketing.catalog.models import Event, TicketType
from ticketing.checkout.models import Ticket
from ticketing.crypto import hash_token, new_token, tokens_match
from ticketing.crypto.stream import (
    CREDENTIAL_PREFIX,
    StreamKeys,
    StreamTokenInvalid,
    make_stream_token,
    make_viewer_credential,
    nginx_secure_link,
    read_stream_token,
    read_viewer_credential,
)
from ticketing.models import begin_write
from ticketing.stream.errors import PlayingElsewhere, ScreenLimit, SessionExpired, StreamRefused
from ticketing.stream.models import ViewerSession


@dataclass(frozen=True)
class StreamPolicy:
    """Operator settings: how early a link opens, how long after the end it still works."""

    opens_before: dt.timedelta
    grace: dt.timedelta
    secure_link_secret: str | None = None
    signed_url_seconds: int = 600
    heartbeat_seconds: int = 30

    @property
    def session_lifetime(self) -> dt.timedelta:
        """Three missed heartbeats and the screen gives its place back."""
        return dt.timedelta(seconds=3 * self.heartbeat_seconds)


@dataclass(frozen=True)
class StreamAccess:
    """A genuine stream token, resolved: its ticket, its event, and whether it opens now."""

    ticket_id: uuid.UUID
    event: Event
    opens_at: dt.datetime
    closes_at: dt.datetime
    is_open: bool


def stream_window(event: Event, policy: StreamPolicy) -> tuple[dt.datetime, dt.datetime]:
    """From a little before the start to the end plus grace, or to the replay's end."""
    closes = event.ends_at + policy.grace
    if event.stream_replay_until and event.stream_replay_until > closes:
        closes = event.stream_replay_until
    return event.starts_at - policy.opens_before, closes


def stream_link_token(keys: StreamKeys, ticket: Ticket) -> str | None:
    """The token of a ticket's watch link, or None when the ticket grants no stream."""
    if ticket.status != "valid" or not ticket.ticket_type.grants_stream:
        return None
    return make_stream_token(keys, ticket.id, ticket.event_id)


def check_stream_token(
    session: Session, keys: StreamKeys, token: str, policy: StreamPolicy, now: dt.datetime
) -> StreamAccess:
    """Signature first (no database), then one lookup of ticket, type and event by ticket id."""
    try:
        ticket_id, event_id = read_stream_token(keys, token)
    except StreamTokenInvalid:
        raise StreamRefused("invalid", _("This stream link is not valid. Check that it was copied whole.")) from None
    row = session.execute(
        select(Ticket.status, TicketType.grants_stream, Event)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(Event, Event.id == Ticket.event_id)
        .where(Ticket.id == ticket_id)
    ).first()
    if row is None or row.Event.id != event_id or not row.grants_stream:
        raise StreamRefused("invalid", _("This stream link is not valid. Check that it was copied whole."))
    event = row.Event
    if row.status != "valid":
        raise StreamRefused("revoked", _("This ticket was refunded or cancelled; its stream link no longer works."))
    if event.status == "cancelled":
        raise StreamRefused("revoked", _("This event was cancelled; there is no stream to watch."))
    opens, closes = stream_window(event, policy)
    if now >= closes:
        raise StreamRefused("expired", _("This stream link has expired: the event is over."))
    return StreamAccess(ticket_id, event, opens, closes, is_open=now >= opens)


def require_open(access: StreamAccess) -> None:
    if not access.is_open:
        raise StreamRefused("not_yet", _("The stream has not opened yet."), opens_at=access.opens_at)


def start_viewer_session(
    session: Session, access: StreamAccess, cookie_token: str | None, policy: StreamPolicy, now: dt.datetime
) -> tuple[ViewerSession, str]:
    """Open a screen for this ticket; returns the session and its (new) cookie value.

    The ticket row is locked (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite)
    so that two screens opening at once cannot both take the last place.
    """
    require_open(access)
    event = access.event
    begin_write(session)
    status = session.execute(select(Ticket.status).where(Ticket.id == access.ticket_id).with_for_update()).scalar()
    if status != "valid":
        session.rollback()
        raise StreamRefused("revoked", _("This ticket was refunded or cancelled; its stream link no longer works."))
    live = list(
        session.execute(
            select(ViewerSession)
            .where(
                ViewerSession.ticket_id == access.ticket_id,
                ViewerSession.ended_at.is_(None),
                ViewerSession.expires_at > now,
            )
            .order_by(ViewerSession.started_at)
        ).scalars()
    )
    if cookie_token:
        mine = next((s for s in live if tokens_match(cookie_token, s.cookie_hash)), None)
        if mine is not None:  # the same screen reloading keeps its place
            mine.last_seen_at, mine.expires_at = now, now + policy.session_lifetime
            session.commit()
            return mine, cookie_token
    excess = len(live) - event.stream_max_screens + 1
    if excess > 0:
        if event.stream_screen_policy == "refuse_new":
            session.rollback()
            raise ScreenLimit(_("This ticket is already playing on another screen. Close it there to watch here."))
        for older in live[:excess]:
            older.ended_at, older.end_reason = now, "superseded"
    cookie_token = new_token()
    viewer = ViewerSession(
        ticket_id=access.ticket_id,
        cookie_hash=hash_token(cookie_token),
        started_at=now,
        last_seen_at=now,
        expires_at=now + policy.session_lifetime,
    )
    session.add(viewer)
    session.commit()
    return viewer, cookie_token


def _own_session(session: Session, ticket_id: uuid.UUID, cookie_token: str | None) -> ViewerSession | None:
    if not cookie_token:
        return None
    return session.execute(
        select(ViewerSession)
        .where(ViewerSession.cookie_hash == hash_token(cookie_token), ViewerSession.ticket_id == ticket_id)
        .execution_options(populate_existing=True)
    ).scalar()


def heartbeat(
    session: Session, ticket_id: uuid.UUID, cookie_token: str | None, policy: StreamPolicy, now: dt.datetime
) -> ViewerSession:
    """Keep a screen alive; tell a screen that lost its place why."""
    if cookie_token:
        begin_write(session)
        kept = session.execute(
            update(ViewerSession)
            .where(
                ViewerSession.cookie_hash == hash_token(cookie_token),
                ViewerSession.ticket_id == ticket_id,
                ViewerSession.ended_at.is_(None),
                ViewerSession.expires_at > now,
            )
            .values(last_seen_at=now, expires_at=now + policy.session_lifetime)
        ).rowcount
        session.commit()
        if kept:
            viewer = _own_session(session, ticket_id, cookie_token)
            assert viewer is not None
            return viewer
    viewer = _own_session(session, ticket_id, cookie_token)
    if viewer is not None and viewer.end_reason == "superseded":
        raise PlayingElsewhere(_("This ticket is now playing on another screen."))
    raise SessionExpired(_("This screen stopped sending news and lost its place. Reload the page to watch again."))


def end_viewer_session(session: Session, ticket_id: uuid.UUID, cookie_token: str | None, now: dt.datetime) -> bool:
    """A closing page gives its place back at once instead of after the session expiry."""
    if not cookie_token:
        return False
    begin_write(session)
    ended = session.execute(
        update(ViewerSession)
        .where(
            ViewerSession.cookie_hash == hash_token(cookie_token),
            ViewerSession.ticket_id == ticket_id,
            ViewerSession.ended_at.is_(None),
        )
        .values(ended_at=now, end_reason="closed")
    ).rowcount
    session.commit()
    return bool(ended)


def viewer_playlist_url(
    keys: StreamKeys, access: StreamAccess, viewer: ViewerSession, policy: StreamPolicy, now: dt.datetime
) -> str | None:
    """The event's stream URL with this screen's credential in its path.

    Gate mode: the credential names the session and lasts until the stream window closes;
    the gate checks the session whenever the streaming server asks (nginx asks again when
    its cached decision, a few seconds old, ages out).
    Signed-URL mode: nginx checks an MD5 that expires after a few minutes; the page asks
    for a fresh one with each heartbeat.
    """
    event = access.event
    if not event.stream_url:
        return None
    if event.stream_access == "signed_url":
        if not policy.secure_link_secret or not event.stream_name:
            return None
        # Rounded up to half-lifetime steps: the URL stays the same between steps, so the
        # player reloads its source once per half lifetime, not at every heartbeat.
        half = max(1, policy.signed_url_seconds // 2)
        stepped = (int(now.timestamp()) // half + 2) * half
        expires = int(min(stepped, access.closes_at.timestamp()))
        digest = nginx_secure_link(policy.secure_link_secret, event.organizer_id, event.stream_name, expires)
        credential = f"{digest}.{expires}"
    else:
        credential = make_viewer_credential(keys, viewer.id, int(access.closes_at.timestamp()))
    return event.stream_url.replace("{credential}", credential)


# --- The streaming gate -----------------------------------------------------------------


@dataclass(frozen=True)
class GateRequest:
    credential: str | None
    stream_name: str | None


def credential_from_uri(uri: str) -> GateRequest:
    """``/hls/<credential>/<stream>/<file>`` (nested HLS) or ``/hls/<credential>/<stream>.m3u8``
    and ``<stream>-<n>.ts`` (flat HLS): the credential travels in the path, so the relative
    segment URLs of the playlist carry it too."""
    path = uri.split("?", 1)[0]
    parts = [part for part in path.split("/") if part]
    for index, part in enumerate(parts):
        if part.startswith(CREDENTIAL_PREFIX) and index + 1 < len(parts):
            rest = parts[index + 1 :]
            if len(rest) >= 2:
                return GateRequest(part, rest[0])
            stem = rest[0].rsplit(".", 1)[0]
            name, dash, number = stem.rpartition("-")
            return GateRequest(part, name if dash and number.isdigit() else stem)
    return GateRequest(None, None)


def check_viewer_credential(
    session: Session,
    keys: StreamKeys,
    organizer_id: uuid.UUID,
    credential: str | None,
    stream_name: str | None,
    now: dt.datetime,
) -> str | None:
    """None when the viewer may play the stream of this name on this organiser's server;
    otherwise the refusal reason.

    Stream names are unique per organiser only, so the streaming server says whose it is
    (the organiser id in the gate's URL) and the credential's event must be that
    organiser's, with that name. The HMAC and the expiry are checked in memory; only then
    one query by primary key reads the session, its ticket and its event, so a refund, a
    newer screen or a cancelled event refuses the next question the streaming server asks.
    """
    if not credential or not stream_name:
        return "invalid"
    try:
        viewer_id, expires_at = read_viewer_credential(keys, credential)
    except StreamTokenInvalid:
        return "invalid"
    if expires_at <= now.timestamp():
        return "expired"
    row = session.execute(
        select(
            ViewerSession.ended_at,
            ViewerSession.expires_at,
            Ticket.status,
            Event.status.label("event_status"),
            Event.organizer_id,
            Event.stream_name,
        )
        .join(Ticket, Ticket.id == ViewerSession.ticket_id)
        .join(Event, Event.id == Ticket.event_id)
        .where(ViewerSession.id == viewer_id)
    ).first()
    session.rollback()
    if row is None or row.organizer_id != organizer_id or row.stream_name != stream_name:
        return "invalid"
    if row.ended_at is not None or row.status != "valid" or row.event_status == "cancelled":
        return "revoked"
    if row.expires_at <= now:
        return "expired"
    return None


def check_publisher(
    session: Session, organizer_id: uuid.UUID, stream_name: str | None, publisher_key: str | None
) -> bool:
    """MediaMTX publish: this organiser's event of this stream name, and its publisher key."""
    if not stream_name or not publisher_key:
        return False
    stored = session.execute(
        select(Event.stream_publisher_key_hash).where(
            Event.organizer_id == organizer_id, Event.stream_name == stream_name
        )
    ).scalar()
    session.rollback()
    return stored is not None and tokens_match(publisher_key, stored)


def credential_from_mediamtx(body: dict[str, object]) -> str | None:
    """MediaMTX passes what the player sent: a bearer token, a password, or the query."""
    for field in ("token", "password"):
        value = body.get(field)
        if isinstance(value, str) and value.startswith(CREDENTIAL_PREFIX):
            return value
    query = body.get("query")
    if isinstance(query, str):
        values = parse_qs(query).get("cred")
        if values:
            return values[0]
    return None


def new_publisher_key(session: Session, event: Event, now: dt.datetime) -> str:
    """A fresh publisher key for the event's stream; only its hash is kept, shown once."""
    key = new_token()
    begin_write(session)
    session.execute(
        update(Event).where(Event.id == event.id).values(stream_publisher_key_hash=hash_token(key), updated_at=now)
    )
    session.commit()
    session.refresh(event)
    return key

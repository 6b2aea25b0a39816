"""Stream tokens, viewer credentials and secure-link hashes: no database needed."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from itsdangerous import URLSafeTimedSerializer

from ticketing.crypto.stream import (
    StreamTokenInvalid,
    make_stream_token,
    make_viewer_credential,
    nginx_secure_link,
    read_stream_token,
    read_viewer_credential,
    stream_keys,
)

OLD = "old-secret-" + "o" * 32
NEW = "new-secret-" + "n" * 32
TICKET, EVENT = uuid.uuid4(), uuid.uuid4()


def test_stream_token_round_trip_names_ticket_and_event_only():
    keys = stream_keys((NEW,))

    token = make_stream_token(keys, TICKET, EVENT)

    assert read_stream_token(keys, token) == (TICKET, EVENT)
    assert "@" not in token and len(token) < 120


def test_forged_stream_token_is_refused():
    keys = stream_keys((NEW,))
    token = make_stream_token(keys, TICKET, EVENT)
    payload, timestamp, signature = token.split(".")
    other = make_stream_token(keys, uuid.uuid4(), EVENT).split(".")[0]

    # The signature's first character: all its bits count (the last one has padding bits).
    changed = ("A" if signature[0] != "A" else "B") + signature[1:]

    for forged in (f"{other}.{timestamp}.{signature}", f"{payload}.{timestamp}.{changed}", "", "x.y"):
        with pytest.raises(StreamTokenInvalid):
            read_stream_token(keys, forged)


def test_token_signed_with_another_salt_is_refused():
    keys = stream_keys((NEW,))
    foreign = URLSafeTimedSerializer(NEW, salt="another-purpose").dumps(["a", "b"])

    with pytest.raises(StreamTokenInvalid):
        read_stream_token(keys, foreign)


def test_rotated_secret_keeps_old_links_and_removed_secret_refuses_them():
    token_from_old = make_stream_token(stream_keys((OLD,)), TICKET, EVENT)
    rotated = stream_keys((OLD, NEW))

    token_from_rotated = make_stream_token(rotated, TICKET, EVENT)

    assert read_stream_token(rotated, token_from_old) == (TICKET, EVENT)
    assert read_stream_token(stream_keys((NEW,)), token_from_rotated) == (TICKET, EVENT)  # newest signs
    with pytest.raises(StreamTokenInvalid):
        read_stream_token(stream_keys((NEW,)), token_from_old)


@pytest.mark.parametrize("edit", ["replace", "insert", "delete"])
def test_an_altered_stream_token_is_refused(edit):
    token = make_stream_token(stream_keys((OLD, NEW)), TICKET, EVENT)
    middle = len(token) // 2
    altered = {
        "replace": token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :],
        "insert": token[:middle] + "A" + token[middle:],
        "delete": token[:middle] + token[middle + 1 :],
    }[edit]

    with pytest.raises(StreamTokenInvalid):
        read_stream_token(stream_keys((OLD, NEW)), altered)


def test_viewer_credential_round_trip_and_rotation():
    session_id = uuid.uuid4()
    old_credential = make_viewer_credential(stream_keys((OLD,)), session_id, 2_000_000_000)

    assert read_viewer_credential(stream_keys((OLD, NEW)), old_credential) == (session_id, 2_000_000_000)
    with pytest.raises(StreamTokenInvalid):
        read_viewer_credential(stream_keys((NEW,)), old_credential)


def test_forged_viewer_credential_is_refused():
    keys = stream_keys((NEW,))
    credential = make_viewer_credential(keys, uuid.uuid4(), 2_000_000_000)
    later = make_viewer_credential(keys, uuid.uuid4(), 2_100_000_000)

    forgeries = [
        credential[:20] + ("A" if credential[20] != "A" else "B") + credential[21:],
        credential[:-1],
        credential[:25] + later[25:],  # another expiry glued to this MAC
        "gv1" + "!" * 48,
        "",
    ]
    for forged in forgeries:
        with pytest.raises(StreamTokenInvalid):
            read_viewer_credential(keys, forged)


def test_secure_link_hash_is_what_nginx_computes():
    secret, stream, expires = "shared-with-nginx", "concert", 1_900_000_000
    organizer = uuid.UUID("6f1c1b7e-0000-4000-8000-000000000001")

    signed = b"1900000000concert 6f1c1b7e-0000-4000-8000-000000000001 shared-with-nginx"
    digest = hashlib.md5(signed).digest()  # noqa: S324 - what nginx uses
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=")

    assert nginx_secure_link(secret, organizer, stream, expires) == expected.decode()
    assert nginx_secure_link(secret, uuid.uuid4(), stream, expires) != expected.decode()  # another organiser's

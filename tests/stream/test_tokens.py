"""Stream tokens, viewer credentials and secure-link hashes: no database needed."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from ticketing.crypto.stream import (
    STREAM_TOKEN_SALT,
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


def _stock_itsdangerous_reading(secrets: tuple[str, ...], token: str) -> tuple[uuid.UUID, uuid.UUID] | str:
    """What a plain URLSafeTimedSerializer makes of a token: the reference the fast reader must match."""
    try:
        ticket, event = URLSafeTimedSerializer(list(secrets), salt=STREAM_TOKEN_SALT).loads(token)
        return (
            uuid.UUID(bytes=base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4))),
            uuid.UUID(bytes=base64.urlsafe_b64decode(event + "=" * (-len(event) % 4))),
        )
    except Exception:  # noqa: BLE001 - any refusal, whatever its type
        return "refused"


def _our_reading(secrets: tuple[str, ...], token: str) -> tuple[uuid.UUID, uuid.UUID] | str:
    try:
        return read_stream_token(stream_keys(secrets), token)
    except StreamTokenInvalid:
        return "refused"


@given(ticket=st.uuids(), event=st.uuids(), signed_by_old=st.booleans())
def test_stream_token_reading_agrees_with_stock_itsdangerous(ticket, event, signed_by_old):
    token = make_stream_token(stream_keys((OLD,) if signed_by_old else (OLD, NEW)), ticket, event)

    for secrets in ((OLD, NEW), (NEW,), (OLD,)):
        expected = _stock_itsdangerous_reading(secrets, token)
        assert _our_reading(secrets, token) == expected
    assert _our_reading((OLD, NEW), token) == (ticket, event)


ALTERED = st.sampled_from("AB-_.=+/!é ")
EDITS = st.sampled_from(("replace", "insert", "delete"))


@given(position=st.integers(min_value=0, max_value=200), character=ALTERED, edit=EDITS)
@example(position=0, character=".", edit="insert")  # an empty first part: itsdangerous's compressed marker
@example(position=200, character="=", edit="insert")  # padding after the signature
def test_an_altered_stream_token_gets_the_answer_stock_itsdangerous_gives(position, character, edit):
    token = make_stream_token(stream_keys((OLD, NEW)), TICKET, EVENT)
    position = min(position, len(token) - 1)
    altered = {
        "replace": token[:position] + character + token[position + 1 :],
        "insert": token[:position] + character + token[position:],
        "delete": token[:position] + token[position + 1 :],
    }[edit]

    assert _our_reading((OLD, NEW), altered) == _stock_itsdangerous_reading((OLD, NEW), altered)


def test_a_token_of_another_shape_is_read_by_itsdangerous_itself():
    """Signed with the right key, but compressed (itsdangerous's leading "."): not the shape
    make_stream_token writes, and its payload names no ticket, so it is refused whichever
    reader takes it (the property tests above hold the two readers to the same answers)."""
    serializer = URLSafeTimedSerializer([NEW], salt=STREAM_TOKEN_SALT)
    compressed = serializer.dumps(["A" * 300, "A" * 300])
    assert compressed.startswith(".")

    with pytest.raises(StreamTokenInvalid):
        read_stream_token(stream_keys((NEW,)), compressed)


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

    digest = hashlib.md5(b"1900000000concert shared-with-nginx").digest()  # noqa: S324 - what nginx uses
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=")

    assert nginx_secure_link(secret, stream, expires) == expected.decode()

"""The signed QR payload: round trip, tampering, keys, events."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import pytest
import segno

from ticketing.crypto import load_keyring, new_key_values, public_key_bytes
from ticketing.tickets.payload import (
    InvalidPayload,
    VerificationKey,
    encode_ticket,
    read_ticket,
    verify_ticket,
    verify_ticket_code,
)

NOW = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)


def ring():
    values = new_key_values()
    return load_keyring(values["secret_key"], values["master_keys"], values["blind_index_key"], values["signing_key"])


@pytest.fixture
def signer():
    return ring()


@pytest.fixture
def ids():
    return uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def keys_of(*rings, expires_at=None):
    return {r.signing_key_id: VerificationKey(public_key_bytes(r.signing_key), expires_at) for r in rings}


def test_payload_round_trips(signer, ids):
    event_id, ticket_id, type_id = ids
    code = encode_ticket(signer, event_id, ticket_id, type_id)

    claims = verify_ticket(code, keys_of(signer), NOW, event_id=event_id)

    assert (claims.key_id, claims.event_id, claims.ticket_id, claims.ticket_type_id) == (
        signer.signing_key_id,
        event_id,
        ticket_id,
        type_id,
    )


def test_payload_is_short_and_uses_qr_alphanumeric_mode(signer, ids):
    code = encode_ticket(signer, *ids)

    qr = segno.make_qr(code, error="m", boost_error=False)

    assert len(code) < 200
    assert qr.mode == "alphanumeric"
    assert qr.version <= 8


def test_every_single_byte_change_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)
    raw = base64.b32decode(code + "=" * (-len(code) % 8))
    keys = keys_of(signer)

    for position in range(len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            tampered = bytearray(raw)
            tampered[position] ^= flip
            text = base64.b32encode(bytes(tampered)).decode().rstrip("=")
            with pytest.raises(InvalidPayload):
                verify_ticket(text, keys, NOW, event_id=ids[0])


def test_every_single_character_change_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)
    keys = keys_of(signer)

    for position in range(len(code)):
        replacement = "A" if code[position] != "A" else "B"
        tampered = code[:position] + replacement + code[position + 1 :]
        with pytest.raises(InvalidPayload):
            verify_ticket(tampered, keys, NOW)


def test_lower_case_and_surrounding_spaces_still_verify(signer, ids):
    code = encode_ticket(signer, *ids)

    claims = verify_ticket(f"  {code.lower()}\n", keys_of(signer), NOW)

    assert claims.ticket_id == ids[1]


def test_unknown_key_id_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)

    with pytest.raises(InvalidPayload) as error:
        verify_ticket(code, keys_of(ring()), NOW)

    assert error.value.reason == "unknown_key"


def test_other_key_under_the_same_id_is_a_bad_signature(signer, ids):
    code = encode_ticket(signer, *ids)
    impostor = ring()
    keys = {signer.signing_key_id: VerificationKey(public_key_bytes(impostor.signing_key))}

    with pytest.raises(InvalidPayload) as error:
        verify_ticket(code, keys, NOW)

    assert error.value.reason == "bad_signature"


def test_expired_key_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)

    with pytest.raises(InvalidPayload) as error:
        verify_ticket(code, keys_of(signer, expires_at=NOW - dt.timedelta(seconds=1)), NOW)

    assert error.value.reason == "expired_key"


def test_key_not_yet_expired_is_accepted(signer, ids):
    code = encode_ticket(signer, *ids)

    claims = verify_ticket(code, keys_of(signer, expires_at=NOW + dt.timedelta(days=1)), NOW)

    assert claims.ticket_id == ids[1]


def test_ticket_of_another_event_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)

    with pytest.raises(InvalidPayload) as error:
        verify_ticket(code, keys_of(signer), NOW, event_id=uuid.uuid4())

    assert error.value.reason == "wrong_event"


@pytest.mark.parametrize("garbage", ["", "   ", "hello world", "0189", "A" * 500, "AAAA", "€€€"])
def test_garbage_is_unreadable(signer, garbage):
    with pytest.raises(InvalidPayload) as error:
        read_ticket(garbage)

    assert error.value.reason == "unreadable"


def test_standalone_verifier_needs_only_the_public_key(signer, ids):
    code = encode_ticket(signer, *ids)
    public_key = public_key_bytes(signer.signing_key)

    good = verify_ticket_code(code, public_key)
    forged = verify_ticket_code(encode_ticket(ring(), *ids), public_key)

    assert good is not None and good.ticket_id == ids[1]
    assert forged is None


def test_payload_holds_nothing_but_ids_and_key(signer, ids):
    code = encode_ticket(signer, *ids)
    raw = base64.b32decode(code + "=" * (-len(code) % 8))

    assert len(raw) == 2 + len(signer.signing_key_id) + 48 + 64

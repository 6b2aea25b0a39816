"""The signed QR payload: round trip, tampering, keys, events."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import segno

from ticketing.crypto import load_keyring, new_key_values, public_key_bytes
from ticketing.tickets.payload import (
    InvalidPayload,
    VerificationKey,
    base32_text,
    decimal_text,
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


def _raw(code: str) -> bytes:
    """The payload's bytes (its first byte, the version, is never 0)."""
    value = int(code)
    size = (value.bit_length() + 7) // 8
    assert decimal_text(value.to_bytes(size, "big")) == code
    return value.to_bytes(size, "big")


def test_payload_is_digits_in_a_version_7_qr_code(signer, ids):
    code = encode_ticket(signer, *ids)

    qr = segno.make_qr(code, error="m", boost_error=False)

    assert code.isdigit()
    assert qr.mode == "numeric"
    assert qr.version == 7  # base32 of the same bytes needs version 8
    assert segno.make_qr(base32_text(_raw(code)), error="m", boost_error=False).version == 8


def test_tickets_written_in_base32_still_verify(signer, ids):
    old_code = base32_text(_raw(encode_ticket(signer, *ids)))

    claims = verify_ticket(old_code, keys_of(signer), NOW, event_id=ids[0])

    assert old_code.startswith("A") and claims.ticket_id == ids[1]


@pytest.mark.parametrize("spell", [decimal_text, base32_text])
def test_every_single_byte_change_is_rejected(signer, ids, spell):
    raw = _raw(encode_ticket(signer, *ids))
    keys = keys_of(signer)

    for position in range(len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            tampered = bytearray(raw)
            tampered[position] ^= flip
            with pytest.raises(InvalidPayload):
                verify_ticket(spell(bytes(tampered)), keys, NOW, event_id=ids[0])


def test_every_single_character_change_is_rejected(signer, ids):
    code = encode_ticket(signer, *ids)
    keys = keys_of(signer)

    for position in range(len(code)):
        for replacement in ("0", "9", "A"):
            if replacement == code[position]:
                continue
            tampered = code[:position] + replacement + code[position + 1 :]
            with pytest.raises(InvalidPayload):
                verify_ticket(tampered, keys, NOW)


def test_a_decimal_code_with_an_extra_leading_zero_is_unreadable(signer, ids):
    code = encode_ticket(signer, *ids)

    with pytest.raises(InvalidPayload) as error:
        read_ticket("0" + code)

    assert error.value.reason == "unreadable"


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
    raw = _raw(code)

    assert len(raw) == 2 + len(signer.signing_key_id) + 48 + 64

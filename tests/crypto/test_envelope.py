import uuid

import pytest

from ticketing.crypto import (
    DecryptionFailed,
    blind_index,
    decrypt_field,
    derive_access_token,
    encrypt_field,
    load_keyring,
    new_data_key,
    new_key_values,
    unwrap_data_key,
    wrap_data_key,
)
from ticketing.crypto.keys import KeyConfigError, format_master_keys, parse_master_keys


def keyring(**overrides):
    values = new_key_values()
    values.update(overrides)
    return load_keyring(**values)


def test_field_round_trip_and_binding_to_person_and_field():
    key, person, other = new_data_key(), uuid.uuid4(), uuid.uuid4()
    sealed = encrypt_field(key, person, "email", "ana@example.org")

    assert decrypt_field(key, person, "email", sealed) == "ana@example.org"
    with pytest.raises(DecryptionFailed):
        decrypt_field(key, other, "email", sealed)
    with pytest.raises(DecryptionFailed):
        decrypt_field(key, person, "name", sealed)
    with pytest.raises(DecryptionFailed):
        decrypt_field(new_data_key(), person, "email", sealed)


def test_every_single_byte_change_of_a_ciphertext_is_refused():
    key, person = new_data_key(), uuid.uuid4()
    sealed = encrypt_field(key, person, "postcode", "31000")

    for position in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            decrypt_field(key, person, "postcode", bytes(tampered))


def test_same_plaintext_encrypts_differently_each_time():
    key, person = new_data_key(), uuid.uuid4()

    assert encrypt_field(key, person, "email", "a@b.org") != encrypt_field(key, person, "email", "a@b.org")


def test_data_key_is_wrapped_by_the_newest_master_key_and_old_keys_still_unwrap():
    old = keyring()
    rotated_keys = parse_master_keys(old_master := format_master_keys(old.master_keys))
    rotated_keys["m-new"] = b"\x07" * 32
    values = new_key_values()
    values["master_keys"] = format_master_keys(rotated_keys)
    rotated = load_keyring(**values)
    person, data_key = uuid.uuid4(), new_data_key()
    old_id, old_wrapped = wrap_data_key(old, person, data_key)

    new_id, new_wrapped = wrap_data_key(rotated, person, data_key)

    assert old_master and new_id == "m-new" and old_id != new_id
    assert unwrap_data_key(rotated, person, old_id, old_wrapped) == data_key
    assert unwrap_data_key(rotated, person, new_id, new_wrapped) == data_key
    with pytest.raises(DecryptionFailed):
        unwrap_data_key(old, person, new_id, new_wrapped)


def test_wrapped_key_cannot_be_moved_to_another_person():
    ring, person, data_key = keyring(), uuid.uuid4(), new_data_key()
    key_id, wrapped = wrap_data_key(ring, person, data_key)

    with pytest.raises(DecryptionFailed):
        unwrap_data_key(ring, uuid.uuid4(), key_id, wrapped)


def test_blind_index_normalises_and_depends_on_its_key():
    key = b"k" * 32

    assert blind_index(key, " Ana@Example.ORG ") == blind_index(key, "ana@example.org")
    assert blind_index(key, "ana@example.org") != blind_index(key, "ana2@example.org")
    assert blind_index(b"j" * 32, "ana@example.org") != blind_index(key, "ana@example.org")


def test_access_tokens_are_long_stable_and_distinct():
    key, order = b"l" * 32, uuid.uuid4()

    token = derive_access_token(key, order)

    assert len(token) >= 43  # 256 bits in URL-safe base64
    assert token == derive_access_token(key, order)
    assert token != derive_access_token(key, uuid.uuid4())
    assert token != derive_access_token(key, order, version=1)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("master_keys", "nocolon", "id:base64key"),
        ("master_keys", "m1:AAAA", "32 bytes"),
        ("blind_index_key", "!!!", "base64"),
        ("signing_key", "s1:AAAA", "32 bytes"),
        ("secret_key", "short", "at least 32"),
    ],
)
def test_malformed_keys_are_refused_with_the_variable_named(field, value, message):
    with pytest.raises(KeyConfigError, match=message):
        keyring(**{field: value})

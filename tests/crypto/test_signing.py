"""Ticket signatures are plain RFC 8032 Ed25519: any verifier accepts them."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ticketing.crypto.signing import public_key_bytes, sign_ticket, verify_ticket_signature

# RFC 8032, section 7.1, TEST 1 (an empty message).
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_signing_and_verifying_follow_rfc_8032():
    private_key = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)

    signature = sign_ticket(private_key, b"")

    assert public_key_bytes(private_key) == RFC_PUBLIC
    assert signature == RFC_SIGNATURE
    assert verify_ticket_signature(RFC_PUBLIC, b"", RFC_SIGNATURE)


def test_a_changed_message_signature_or_key_is_refused_without_raising():
    changed_signature = bytes([RFC_SIGNATURE[0] ^ 1]) + RFC_SIGNATURE[1:]
    other_key = public_key_bytes(Ed25519PrivateKey.generate())

    assert not verify_ticket_signature(RFC_PUBLIC, b"x", RFC_SIGNATURE)
    assert not verify_ticket_signature(RFC_PUBLIC, b"", changed_signature)
    assert not verify_ticket_signature(other_key, b"", RFC_SIGNATURE)
    assert not verify_ticket_signature(RFC_PUBLIC[:31], b"", RFC_SIGNATURE)
    assert not verify_ticket_signature(b"\xff" * 32, b"", RFC_SIGNATURE)  # not a point on the curve

"""Buyers see their tickets' QR codes: order page, printable view, mail, API; keys stay
published after rotation."""

from __future__ import annotations

import base64
import email
import re
from pathlib import Path

from tests.conftest import outbox, published_event
from ticketing.extensions import keyring
from ticketing.tickets.payload import verify_ticket_code
from ticketing.tickets.services import current_public_key

LINK = re.compile(r"https?://[^/\s]+(/orders/[A-Z0-9-]+/[A-Za-z0-9_-]+)")


def free_order(client, app, quantity=2):
    event = published_event(app, price_cents=0, fee_cents=0, capacity=5)
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": quantity}],
        "email": "ana@example.org",
    }
    return client.post("/api/v1/orders", json=body).get_json()


def test_order_api_lists_each_paid_tickets_verifiable_qr_payload(app, client):
    placed = free_order(client, app)

    order = client.get(
        f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
    ).get_json()

    # As README.md shows other scanner software: the key from /api/v1/checkin/keys, decoded.
    [key] = client.get("/api/v1/checkin/keys").get_json()["keys"]
    public_key = base64.urlsafe_b64decode(key["public_key"] + "==")
    payloads = [t["qr_payload"] for t in order["tickets"]]
    assert len(payloads) == 2
    for ticket, payload in zip(order["tickets"], payloads, strict=True):
        claims = verify_ticket_code(payload, public_key)
        assert claims is not None and str(claims.ticket_id) == ticket["id"]


def test_order_page_and_printable_view_show_inline_svg_qr_codes(app, client):
    placed = free_order(client, app)
    [mail] = outbox(app)
    message = email.message_from_bytes(mail.read_bytes())
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    path = LINK.search(text).group(1)

    page = client.get(path).get_data(as_text=True)
    printable = client.get(path + "/print")

    assert page.count("<svg") == 2
    assert "/print" in page
    assert printable.status_code == 200
    assert printable.get_data(as_text=True).count("<svg") == 2
    assert "printed-ticket" in printable.get_data(as_text=True)
    assert client.get(f"/orders/{placed['code']}/wrong-token/print").status_code == 404


def test_order_mail_embeds_one_png_qr_per_ticket(app, client):
    free_order(client, app, quantity=2)
    [mail] = outbox(app)
    message = email.message_from_bytes(Path(mail).read_bytes())

    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()

    assert len(images) == 2
    for image in images:
        assert image.get_payload(decode=True).startswith(b"\x89PNG")
        assert f"cid:{image['Content-ID'].strip('<>')}" in html


def test_old_public_key_stays_published_after_rotation(app, client, runner):
    with app.app_context():
        old_id = keyring().signing_key_id
        old_key = base64.urlsafe_b64encode(current_public_key(keyring())).decode().rstrip("=")

    result = runner.invoke(args=["rotate-signing-key"])
    keys = client.get("/api/v1/checkin/keys").get_json()["keys"]

    assert result.exit_code == 0, result.output
    assert "TICKETING_SIGNING_KEY=" in result.output
    assert {"id": old_id, "public_key": old_key} in [{"id": k["id"], "public_key": k["public_key"]} for k in keys]


def test_qr_svg_scales_to_its_container_and_draws_its_quiet_zone():
    from ticketing.tickets.qr import QUIET_ZONE, qr_svg

    svg = str(qr_svg("1234567890", "QR code"))

    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))
    opening = svg[: svg.index(">")]
    assert "width=" not in opening and "height=" not in opening  # a fixed size is what cropped it
    assert 'role="img"' in opening and "<title>QR code</title>" in svg
    assert f'<path fill="#fff" d="M0 0h{size}v{size}h-{size}z"/>' in svg  # light under the quiet zone too
    assert size == 21 + 2 * QUIET_ZONE

"""``/api/v1/privacy``: export and erasure for programs.

Authentication is ``Authorization: Bearer <token>``. With ``?order=<code>`` the token is
that order's access token; without it, it is the token of an emailed "my data" link
(the part after ``/privacy/my-data/``). An order token alone does not name its order, and
guessing codes must not be the way to find one, hence the explicit ``order`` parameter.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext as _

from ticketing.errors import Unauthorized
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.privacy import services
from ticketing.privacy.person_links import person_links
from ticketing.privacy.schemas import ERASURE, EXPORT, ORDER_QUERY
from ticketing.schema import respond
from ticketing.web import bearer_token

bp = Blueprint("privacy_api", __name__, url_prefix="/api/v1/privacy")
TOKENS = ("orderToken", "myDataToken")
AUTHENTICATION = (
    "`Authorization: Bearer <token>`: with `?order=<code>`, the token is that order's access token; "
    "without it, the token of an emailed my-data link (valid 30 minutes; an erasure uses it up)."
)
PROBLEMS = {
    401: "No token, a forged token, or an expired my-data link token",
    404: "`order_not_found`: no order for this code and token",
    410: "`token_used`: this my-data link token was already used",
}


def _requester() -> tuple[services.Requester, bool]:
    token = bearer_token()
    if not token:
        raise Unauthorized(
            _(
                "Send an order's access token (with ?order=<code>) or a my-data link token "
                "as 'Authorization: Bearer <token>'."
            )
        )
    code = request.args.get("order")
    if code is not None:
        return services.requester_from_order(db.session, person_links(), code, token), True
    return services.requester_from_token(db.session, current_app.config["SECRET_KEY"], token, utcnow()), False


@bp.post("/erasure")
@operation(
    "Erase the buyer's personal data (crypto-shredding); asking again answers the same receipt",
    description=AUTHENTICATION,
    query=ORDER_QUERY,
    answers={200: (ERASURE, "Erased (or already erased: the same receipt)")},
    problems=PROBLEMS,
    security=TOKENS,
)
def erase() -> Response:
    requester, by_order = _requester()
    route = "api_order_token" if by_order else "api_email_token"
    receipt = services.erase_person(db.session, person_links(), requester, route=route, now=utcnow())
    body = receipt.as_json()
    body["tickets_remain_valid"] = True
    body["detail"] = _(
        "Your personal data is erased. Your tickets stay valid; to get your money back instead, "
        "cancel the order with the organiser for a refund."
    )
    return respond(ERASURE, body)


@bp.get("/export")
@operation(
    "Everything held about the buyer, decrypted, with its retention and what erasure keeps",
    description=AUTHENTICATION,
    query=ORDER_QUERY,
    answers={200: (EXPORT, "The export")},
    problems=PROBLEMS,
    security=TOKENS,
)
def export() -> Response:
    requester, _by_order = _requester()
    return respond(EXPORT, services.export_person(db.session, keyring(), person_links(), requester, now=utcnow()))

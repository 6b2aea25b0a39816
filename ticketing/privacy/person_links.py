"""The hook through which later domains tell the vault what they link to a person.

The vault comes before checkout (and check-in, streaming) in the dependency order, so it
cannot import their models. Each of those domains implements ``PersonLinks`` and
``create_app`` lists the implementations in ``app.extensions["guichet.person_links"]``;
privacy services take that list as an explicit argument. A domain overrides only what it
has: check-ins add a section to the export and nothing else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class OrderOwner:
    """Who an order link opens: the order, and its buyer (None once erased)."""

    order_id: uuid.UUID
    order_code: str
    person_id: uuid.UUID | None


class PersonLinks:
    """Default: links nothing. Subclasses override what their domain keeps."""

    def export(self, session: Session, person_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
        """Sections of the export (``orders``, ``tickets``, ``check_ins``, ...) for this person."""
        return {}

    def unlink(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Cut these persons from every row that names them, inside the caller's transaction;
        return the order ids each one was cut from (for the erasure receipts)."""
        return {}

    def retention_ends(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
        """For each person, until when this domain still needs their data (absent: no need;
        None: needed, but until when cannot be worked out, so the purge keeps and reports them)."""
        return {}

    def order_owner(self, session: Session, code: str, access_token: str) -> OrderOwner | None:
        """The order a (code, access token) pair opens, if this domain holds orders."""
        return None


def person_links() -> list[PersonLinks]:
    """The running app's implementations (for routes and commands, at the edge)."""
    return current_app.extensions.get("guichet.person_links", [])

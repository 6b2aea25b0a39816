"""What the back office tells the vault about staff records.

The retention purge erases every record no domain still needs. A staff member's record is
needed while the account exists: an active account keeps it for as long as it is active;
an invitation never accepted keeps it until the invitation's last link expires, and then
the purge erases it and ``unlink`` closes the account. Removing an account erases its
record at once (``services.remove_staff``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ticketing.backoffice.models import StaffLink, StaffMember
from ticketing.privacy.person_links import PersonLinks

# "Needed for as long as the account is active": a date no purge reaches.
WHILE_ACTIVE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


class StaffLinks(PersonLinks):
    def retention_ends(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
        rows = session.execute(
            select(StaffMember.person_id, StaffMember.status, StaffMember.created_at, func.max(StaffLink.expires_at))
            .outerjoin(StaffLink, StaffLink.staff_id == StaffMember.id)
            .where(StaffMember.person_id.in_(person_ids), StaffMember.status != "removed")
            .group_by(StaffMember.id, StaffMember.person_id, StaffMember.status, StaffMember.created_at)
        ).all()
        ends: dict[uuid.UUID, dt.datetime | None] = {}
        for person_id, status, created_at, last_link_expiry in rows:
            if status == "active":
                ends[person_id] = WHILE_ACTIVE
            else:
                # SQLite hands back max() of a datetime column as text: read the link again.
                ends[person_id] = _as_instant(last_link_expiry) or created_at
        return ends

    def unlink(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        staff_ids = select(StaffMember.id).where(StaffMember.person_id.in_(person_ids)).scalar_subquery()
        session.execute(
            delete(StaffLink).where(StaffLink.staff_id.in_(staff_ids)).execution_options(synchronize_session=False)
        )
        session.execute(
            update(StaffMember)
            .where(StaffMember.person_id.in_(person_ids))
            .values(person_id=None, status="removed", password_hash=None, totp_secret_ct=None)
            .execution_options(synchronize_session=False)
        )
        return {}


def _as_instant(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

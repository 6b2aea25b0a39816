"""The back office's own mails: invitations and password resets.

They carry a one-time link that no stored id can rebuild (only its hash is kept), so they
are sent directly after the commit, like the buyer's "my data" link, never queued.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from flask import current_app, render_template
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from ticketing.mail import MailFailed, OutgoingMail, send_mail

log = logging.getLogger(__name__)


def send_staff_link(
    *, to: str, staff_id: uuid.UUID, purpose: str, link: str, organizer_name: str, lifetime: dt.timedelta
) -> bool:
    """Mail an invitation or a reset link; False (logged, with the staff id only) when it failed."""
    locale = str(get_locale() or "en")
    hours = int(lifetime.total_seconds() // 3600)
    with force_locale(locale):
        if purpose == "invite":
            subject = _("You are invited to %(organizer)s's back office", organizer=organizer_name)
            template = "mail/staff_invitation.txt"
        else:
            subject = _("Choose a new password for Guichet")
            template = "mail/staff_password_reset.txt"
        text = render_template(template, link=link, organizer_name=organizer_name, hours=hours, days=hours // 24)
    try:
        send_mail(
            OutgoingMail(to=to, subject=subject, text=text, language=locale),
            current_app.config,
            current_app.instance_path,
        )
    except MailFailed as error:
        log.warning("staff %s: %s link not mailed: %s", staff_id, purpose, error)
        return False
    return True

"""Outgoing mail: SMTP in production, ``.eml`` files in the instance outbox by default.

Imports no domain. Mails that follow a change of state are queued in its transaction and
sent after the commit (``mail.queue``), so a mail failure can never undo an order and is
retried; the few sent directly go after the commit too. Logs name ids and order codes,
never the address.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import secrets
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any


class MailFailed(Exception):
    """The message could not be handed over; the text never holds the recipient."""


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str | None = None
    language: str = "en"
    # (content id, PNG bytes): images the HTML part shows as ``cid:<content id>``. Mail
    # clients block remote images and many (Gmail, Outlook) drop ``data:`` URIs; related
    # parts show everywhere.
    inline_images: tuple[tuple[str, bytes], ...] = ()
    # (file name, MIME type, text): files the reader saves, such as the event's .ics.
    attachments: tuple[tuple[str, str, str], ...] = ()


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
        html_part = message.get_payload()[-1]
        for content_id, png in mail.inline_images:
            html_part.add_related(png, maintype="image", subtype="png", cid=f"<{content_id}>")
    for filename, mime_type, text in mail.attachments:
        maintype, _slash, subtype = mime_type.partition("/")
        if maintype != "text":
            raise ValueError("attachments are text files")
        message.add_attachment(text, subtype=subtype, filename=filename)
    # After the body: set_content() drops every Content-* header set before it.
    message["Content-Language"] = mail.language
    return message


def _write_outbox(message: EmailMessage, outbox: Path) -> Path:
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(bytes(message))
    temporary.chmod(0o600)
    temporary.rename(path)  # readers never see half a message
    return path


def _send_smtp(message: EmailMessage, config: Mapping[str, Any]) -> None:
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    try:
        with smtplib.SMTP(host, port, timeout=config["SMTP_TIMEOUT"]) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise MailFailed(f"SMTP server {host}:{port} refused or failed: {type(error).__name__}") from None


def send_mail(mail: OutgoingMail, config: Mapping[str, Any], instance_path: str) -> None:
    """Deliver through SMTP when ``TICKETING_SMTP_HOST`` is set, else to ``instance/outbox``."""
    message = build_message(mail, config["MAIL_FROM"])
    if config.get("SMTP_HOST"):
        _send_smtp(message, config)
    else:
        try:
            _write_outbox(message, Path(instance_path) / "outbox")
        except OSError as error:
            raise MailFailed(f"could not write to the outbox: {type(error).__name__}") from None

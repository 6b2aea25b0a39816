"""Request logs without secrets or client addresses.

werkzeug's and gunicorn's access logs write the request line, and Guichet's secret links
(order pages, payment pages, "my data" links, stream links) carry their token in the
path. The filter here cuts the tokens and the client address out before a line is
written. Imports no domain.
"""

from __future__ import annotations

import logging
import re

from flask import Flask

# Secret parts of URLs (order links, payment pages) are cut out of request logs.
SECRET_PATH = re.compile(r"(/(?:(?:orders|pay/demo|pay/stripe)/[^/\s?\"]{1,48}|refunds/choose)/)[^\s?\"]+")
# The emailed "my data" links carry their token right after the prefix.
PRIVACY_LINK = re.compile(r"(/privacy/my-data/)[^\s?\"/]+")
# Stream links carry their token first: /watch/<token>/...
WATCH_PATH = re.compile(r"(/watch/)[^/\s?\"]+")
# The back office's one-time links (invitations, password resets): /manage/link/<token>
STAFF_LINK = re.compile(r"(/manage/link/)[^/\s?\"]+")
# Request log lines (werkzeug's, gunicorn's default format) begin with the client address.
CLIENT_ADDRESS = re.compile(r"^[0-9A-Fa-f:.%\[\]]+ - ")


def _redact(text: str) -> str:
    for pattern in (SECRET_PATH, PRIVACY_LINK, WATCH_PATH, STAFF_LINK):
        text = pattern.sub(r"\1[token]", text)
    return text


class RedactSecretPaths(logging.Filter):
    """Cuts secrets and client addresses out of request log lines before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = CLIENT_ADDRESS.sub("[client] - ", _redact(record.msg))
        return True


def configure_logging(app: Flask) -> None:
    """The app's log level, and redaction on every logger that writes request lines."""
    logging.getLogger("ticketing").setLevel(app.config["LOG_LEVEL"])
    redact = RedactSecretPaths()
    logging.getLogger("werkzeug").addFilter(redact)
    logging.getLogger("gunicorn.access").addFilter(redact)
    # The stripe SDK logs request bodies at INFO/DEBUG, and they hold the order links
    # (success_url): never below WARNING, whatever the root level.
    logging.getLogger("stripe").setLevel(logging.WARNING)

"""Reading back what a buyer's screen shows: QR codes decoded from screenshots, mails as pages.

QR codes are decoded with zbar (Debian's ``zbar-tools``, the ``zbarimg`` command), a reader
independent of segno, which drew them. Outside CI a missing ``zbarimg`` skips the test with
the reason; with ``CI=true`` it fails it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ZBARIMG = "zbarimg"


def zbarimg() -> str:
    found = shutil.which(ZBARIMG)
    if found:
        return found
    reason = "zbarimg is missing (install Debian's zbar-tools: apt-get install zbar-tools)"
    if IN_CI:
        pytest.fail(f"CI=true: QR decoding must run, but {reason}", pytrace=False)
    pytest.skip(reason)


def decode_qr_codes(image: Path) -> list[str]:
    """Every QR code zbar finds in the image, as text (an empty list when it finds none)."""
    result = subprocess.run(
        [zbarimg(), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 0: found some; 4: found none. Anything else is zbar failing, not the page.
    assert result.returncode in (0, 4), f"zbarimg failed on {image}: {result.stderr}"
    return [line for line in result.stdout.splitlines() if line.strip()]


def read_mail(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def mail_as_page(message: EmailMessage) -> str:
    """The HTML part with its ``cid:`` images inlined, as a mail client shows it."""
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None, "the mail has no HTML part"
    html = html_part.get_content()
    for part in message.walk():
        content_id = part.get("Content-ID")
        if content_id and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_content()).decode("ascii")
            html = html.replace(f"cid:{content_id.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    assert not re.search(r'src="cid:', html), "an image of the mail has no part"
    return html

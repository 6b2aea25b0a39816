"""QR codes of ticket payloads: SVG for pages, PNG for mail."""

from __future__ import annotations

import io

import segno
from markupsafe import Markup

# The quiet zone ISO/IEC 18004 asks for around a QR code, in modules. It is part of the
# image (drawn light, in every colour scheme), so no layout can eat it.
QUIET_ZONE = 4


def _qr(payload: str) -> segno.QRCode:
    # Level M survives a scratched or cracked screen; the payload is digits, so segno
    # picks numeric mode (see tickets.payload).
    return segno.make_qr(payload, error="m", boost_error=False)


def qr_svg(payload: str, title: str) -> Markup:
    """An inline ``<svg>`` element: no request, no inline script, allowed by the CSP.

    It has a ``viewBox`` and no size of its own, so it scales to its container (CSS sets
    the width) instead of being cropped by it; ``role="img"`` and its ``<title>`` name it.
    """
    out = io.BytesIO()
    _qr(payload).save(
        out,
        kind="svg",
        border=QUIET_ZONE,
        xmldecl=False,
        svgns=False,
        title=title,
        svgclass="qr",
        lineclass=None,
        omitsize=True,
        light="#fff",
    )
    svg = out.getvalue().decode("utf-8").replace("<svg ", '<svg role="img" ', 1)
    return Markup(svg)  # noqa: S704 - segno's own markup, the title is escaped by segno


def qr_png(payload: str) -> bytes:
    out = io.BytesIO()
    _qr(payload).save(out, kind="png", scale=6, border=QUIET_ZONE)
    return out.getvalue()

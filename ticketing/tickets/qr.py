"""QR codes of ticket payloads: SVG for pages, PNG for mail."""

from __future__ import annotations

import io

import segno
from markupsafe import Markup


def _qr(payload: str) -> segno.QRCode:
    # Level M survives a scratched or cracked screen; the payload is upper-case base32,
    # so segno picks alphanumeric mode.
    return segno.make_qr(payload, error="m", boost_error=False)


def qr_svg(payload: str, title: str) -> Markup:
    """An inline ``<svg>`` element: no request, no inline script, allowed by the CSP."""
    out = io.BytesIO()
    _qr(payload).save(
        out, kind="svg", scale=4, border=4, xmldecl=False, svgns=False, title=title, svgclass="qr", lineclass=None
    )
    return Markup(out.getvalue().decode("utf-8"))  # noqa: S704 - segno's own markup, the title is escaped by segno


def qr_png(payload: str) -> bytes:
    out = io.BytesIO()
    _qr(payload).save(out, kind="png", scale=6, border=4)
    return out.getvalue()

"""Event posters: one service for the API (and, later, the back office).

An upload is decoded with Pillow, turned upright (its EXIF orientation applied), flattened
onto white, resized into a few widths and re-encoded as JPEG. Nothing of the file's own
metadata survives the re-encoding: no EXIF (camera, date, GPS position), no XMP, no
comments, no colour profile. The images live in the database, like every other state,
so that every app host serves them; pages show them with ``srcset``.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ticketing.catalog.models import Event, Poster, PosterImage
from ticketing.errors import Invalid, NotFound
from ticketing.models import begin_write

WIDTHS = (320, 640, 960, 1280)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# A decoded image larger than this is refused before it is decoded (a "decompression
# bomb": a small file that inflates to gigabytes of pixels).
MAX_PIXELS = 40_000_000
MIN_SIDE = 100
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
JPEG_QUALITY = 82
MAX_ALT = 300


@dataclass(frozen=True)
class PosterSize:
    width: int
    height: int


@dataclass(frozen=True)
class PosterView:
    """What a page needs to show a poster: its sizes, its version, its text."""

    event_id: uuid.UUID
    version: str
    alt: str
    sizes: tuple[PosterSize, ...]

    @property
    def largest(self) -> PosterSize:
        return self.sizes[-1]

    def fallback(self, width: int = 640) -> PosterSize:
        """The ``src`` for browsers without ``srcset``: the size nearest ``width`` from above."""
        return next((size for size in self.sizes if size.width >= width), self.largest)


def _refuse(message: str) -> Invalid:
    return Invalid(message, errors={"image": message})


def _decode(data: bytes) -> Image.Image:
    if not data:
        raise _refuse(_("Send an image file."))
    if len(data) > MAX_UPLOAD_BYTES:
        raise _refuse(_("The image is larger than %(num)d MB.", num=MAX_UPLOAD_BYTES // (1024 * 1024)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise _refuse(_("Send a JPEG, PNG or WebP image."))
            if image.width * image.height > MAX_PIXELS:
                raise _refuse(_("The image has too many pixels; 40 million at most."))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(_("The image has too many pixels; 40 million at most.")) from None
    except (UnidentifiedImageError, OSError):
        raise _refuse(_("This file is not an image we can read; send a JPEG, PNG or WebP image.")) from None
    if min(image.size) < MIN_SIDE:
        raise _refuse(
            ngettext(
                "The image is too small: %(num)d pixel on its shorter side at least.",
                "The image is too small: %(num)d pixels on its shorter side at least.",
                MIN_SIDE,
            )
        )
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied, since the tag itself goes), in RGB on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile= or comment= arguments: the file carries pixels only.
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def render_poster(data: bytes) -> list[tuple[PosterSize, bytes]]:
    """The widths a page offers, each a JPEG, never wider than the upload itself."""
    image = _flatten(_decode(data))
    widths = [width for width in WIDTHS if width < image.width] + [min(image.width, WIDTHS[-1])]
    rendered = []
    for width in sorted(set(widths)):
        height = max(1, round(image.height * width / image.width))
        resized = image if width == image.width else image.resize((width, height), Image.Resampling.LANCZOS)
        rendered.append((PosterSize(width, height), _jpeg(resized)))
    return rendered


def clean_alt(alt: str | None) -> str:
    text = " ".join((alt or "").split())
    if len(text) > MAX_ALT:
        raise Invalid(
            _("At most %(num)d characters.", num=MAX_ALT), errors={"alt": _("At most %(num)d characters.", num=MAX_ALT)}
        )
    return text


def set_poster(session: Session, event: Event, data: bytes, alt: str | None, now: dt.datetime) -> PosterView:
    """Replace the event's poster. The image work happens before the write transaction,
    which then only swaps rows: SQLite's write lock is not held while Pillow resizes."""
    alt_text = clean_alt(alt)
    rendered = render_poster(data)
    event_id = event.id
    session.rollback()
    begin_write(session)
    if session.get(Event, event_id) is None:
        session.rollback()
        raise NotFound(_("No such event."))
    version = secrets.token_hex(6)
    session.execute(delete(PosterImage).where(PosterImage.event_id == event_id))
    session.execute(delete(Poster).where(Poster.event_id == event_id))
    session.add(Poster(event_id=event_id, version=version, alt=alt_text, created_at=now))
    session.flush()
    session.add_all(
        PosterImage(event_id=event_id, width=size.width, height=size.height, content=jpeg) for size, jpeg in rendered
    )
    session.commit()
    return PosterView(event_id, version, alt_text, tuple(size for size, _jpeg in rendered))


def remove_poster(session: Session, event: Event) -> bool:
    event_id = event.id
    session.rollback()
    begin_write(session)
    session.execute(delete(PosterImage).where(PosterImage.event_id == event_id))
    removed = session.execute(delete(Poster).where(Poster.event_id == event_id)).rowcount
    session.commit()
    return bool(removed)


def posters_for(session: Session, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PosterView]:
    """The posters of these events, in one query, without their bytes."""
    ids = list(event_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Poster.event_id, Poster.version, Poster.alt, PosterImage.width, PosterImage.height)
        .join(PosterImage, PosterImage.event_id == Poster.event_id)
        .where(Poster.event_id.in_(ids))
        .order_by(Poster.event_id, PosterImage.width)
    ).all()
    found: dict[uuid.UUID, PosterView] = {}
    for row in rows:
        view = found.get(row.event_id)
        sizes = (view.sizes if view else ()) + (PosterSize(row.width, row.height),)
        found[row.event_id] = PosterView(row.event_id, row.version, row.alt, sizes)
    return found


def poster_image(session: Session, event_id: uuid.UUID, version: str, width: int) -> bytes | None:
    """The JPEG a poster URL names; None for an old version or a width never made."""
    return session.execute(
        select(PosterImage.content)
        .join(Poster, Poster.event_id == PosterImage.event_id)
        .where(PosterImage.event_id == event_id, Poster.version == version, PosterImage.width == width)
    ).scalar()

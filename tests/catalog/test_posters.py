"""Event posters: uploaded through the API, resized, stripped of metadata, served by the app."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.catalog.test_api import auth, organizer_token, published_event
from ticketing.catalog.posters import MAX_UPLOAD_BYTES, WIDTHS

GPS_IFD = 0x8825
ORIENTATION = 0x0112
ARTIST = 0x013B


def photo(width: int = 1500, height: int = 1000, *, orientation: int | None = None, fmt: str = "JPEG") -> bytes:
    """A photo as a phone writes it: EXIF with the author, the GPS position and the orientation."""
    image = Image.new("RGB", (width, height), (30, 90, 160))
    image.paste((220, 40, 40), (0, 0, width // 4, height // 4))  # a red corner, to see rotations
    exif = Image.Exif()
    exif[ARTIST] = "Ana Martin"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (43.0, 36.0, 16.0), 3: "E", 4: (1.0, 26.0, 38.0)})
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif.tobytes())
    return out.getvalue()


def upload(client, token: str, event_id: str, data: bytes, alt: str | None = "A red corner on blue"):
    form = {"image": (io.BytesIO(data), "poster.jpg")}
    if alt is not None:
        form["alt"] = alt
    return client.put(
        f"/api/v1/events/{event_id}/poster", data=form, headers=auth(token), content_type="multipart/form-data"
    )


def local(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.fixture
def event_and_token(app, client):
    token = organizer_token(app)
    event, _ticket_type = published_event(client, token)
    return event["id"], token


def test_upload_is_resized_into_widths_and_served_without_any_metadata(client, event_and_token):
    event_id, token = event_and_token

    response = upload(client, token, event_id, photo(1500, 1000))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [image["width"] for image in body["images"]] == [320, 640, 960, 1280]
    assert body["alt"] == "A red corner on blue"
    for image in body["images"]:
        served = client.get(local(image["url"]))
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        assert "immutable" in served.headers["Cache-Control"]
        decoded = Image.open(io.BytesIO(served.data))
        assert decoded.size == (image["width"], image["height"])
        assert image["height"] == round(image["width"] * 1000 / 1500)
        assert not decoded.getexif() and "exif" not in decoded.info and "icc_profile" not in decoded.info
        assert b"Ana Martin" not in served.data and b"Exif" not in served.data


def test_a_rotated_phone_photo_is_turned_upright_before_its_orientation_tag_goes(client, event_and_token):
    event_id, token = event_and_token

    body = upload(client, token, event_id, photo(1200, 800, orientation=6)).get_json()  # 6: rotate 90° clockwise

    largest = body["images"][-1]
    decoded = Image.open(io.BytesIO(client.get(local(largest["url"])).data)).convert("RGB")
    assert (largest["width"], largest["height"]) == (800, 1200)
    assert decoded.getpixel((largest["width"] - 10, 10))[0] > 150  # the red corner is now top right


def test_a_small_image_is_never_enlarged(client, event_and_token):
    event_id, token = event_and_token

    body = upload(client, token, event_id, photo(500, 300, fmt="PNG")).get_json()

    assert [image["width"] for image in body["images"]] == [320, 500]


def test_pages_offer_the_widths_in_a_srcset_and_a_new_upload_retires_the_old_urls(client, event_and_token):
    event_id, token = event_and_token
    first = upload(client, token, event_id, photo()).get_json()

    second = upload(client, token, event_id, photo(), alt="").get_json()
    event_page = client.get(f"/events/{event_id}").get_data(as_text=True)
    index = client.get("/").get_data(as_text=True)

    assert first["version"] != second["version"]
    assert client.get(local(first["images"][0]["url"])).status_code == 404
    for page in (event_page, index):
        srcset = re.search(r'srcset="([^"]+)"', page).group(1)
        assert [int(w) for w in re.findall(r" (\d+)w", srcset)] == list(WIDTHS)
        assert second["version"] in srcset
    assert 'alt=""' in index  # the card's link already names the event


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 422),
        (b"GIF89a not really an image", 422),
        (b"%PDF-1.4 a document", 422),
        (None, 422),  # a PNG of 50x50: too small
    ],
)
def test_what_is_not_a_usable_image_is_refused_with_a_message(client, event_and_token, data, status):
    event_id, token = event_and_token
    if data is None:
        out = io.BytesIO()
        Image.new("RGB", (50, 50)).save(out, format="PNG")
        data = out.getvalue()

    response = upload(client, token, event_id, data)

    assert response.status_code == status
    assert response.get_json()["errors"]["image"]
    assert client.get(f"/api/v1/events/{event_id}/poster").status_code == 404


def test_a_decompression_bomb_is_refused_before_it_is_decoded(client, event_and_token):
    event_id, token = event_and_token
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")  # 100 million pixels in a few kilobytes

    response = upload(client, token, event_id, out.getvalue())

    assert len(out.getvalue()) < 100_000
    assert response.status_code == 422
    assert "pixels" in response.get_json()["errors"]["image"]


def test_an_upload_over_the_limit_is_a_413(client, event_and_token):
    event_id, token = event_and_token

    response = upload(client, token, event_id, b"\xff" * (MAX_UPLOAD_BYTES + 200_000))

    assert response.status_code == 413


def test_only_the_events_organiser_may_change_its_poster(app, client, event_and_token):
    event_id, token = event_and_token
    stranger = organizer_token(app, "Another venue")

    assert upload(client, stranger, event_id, photo()).status_code == 404
    assert client.put(f"/api/v1/events/{event_id}/poster").status_code == 401
    assert upload(client, token, event_id, photo()).status_code == 200
    assert client.delete(f"/api/v1/events/{event_id}/poster", headers=auth(stranger)).status_code == 404
    assert client.delete(f"/api/v1/events/{event_id}/poster", headers=auth(token)).status_code == 204
    assert client.get(f"/api/v1/events/{event_id}/poster").status_code == 404

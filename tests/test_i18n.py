"""French and English: the language a reader gets, the switch, and a catalogue that is
complete, compiled, and in step with the strings in the code and templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.messages.frontend import ExtractMessages
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale

from tests.conftest import make_event, post_form
from ticketing.display import local_time

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = PROJECT_ROOT / "ticketing" / "translations"
BABEL_CFG = TRANSLATIONS / "babel.cfg"

FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


def _text(response) -> str:  # type: ignore[no-untyped-def]
    """The page as text, with French typography's no-break spaces read as plain spaces."""
    return response.get_data(as_text=True).replace("\u00a0", " ").replace("\u202f", " ")


def _event_id(app, **options) -> str:  # type: ignore[no-untyped-def]
    return _event_and_type_ids(app, **options)[0]


def _event_and_type_ids(app, **options) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with app.app_context():
        event = make_event(**options)
        return str(event.id), str(event.ticket_types[0].id)


def _key(message) -> tuple:  # type: ignore[no-untyped-def]
    msgid = tuple(message.id) if isinstance(message.id, list | tuple) else message.id
    return (message.context, msgid)


def _strings(message) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """Every form of the translation: one, or one per plural form."""
    return tuple(message.string) if isinstance(message.string, list | tuple) else (message.string,)


def _show(key: tuple) -> str:
    context, msgid = key
    text = " | ".join(msgid) if isinstance(msgid, tuple) else msgid
    return f"{text!r}" + (f" (context {context!r})" if context else "")


def _relative(path: str) -> str:
    return str(Path(path).resolve().relative_to(PROJECT_ROOT))


# -- which language a reader gets -------------------------------------------------------


def test_event_page_is_french_for_a_french_reader(app, client):
    event_id = _event_id(app, capacity=12)

    page = client.get(f"/events/{event_id}", headers=FRENCH)

    body = _text(page)
    assert page.status_code == 200
    assert '<html lang="fr">' in body
    assert "Choisissez vos billets" in body
    assert "Plus que 12 billets" in body
    assert "Choose your tickets" not in body


def test_event_page_is_english_without_accept_language(app, client):
    event_id = _event_id(app, capacity=12)

    page = client.get(f"/events/{event_id}")

    body = _text(page)
    assert page.status_code == 200
    assert '<html lang="en">' in body
    assert "Choose your tickets" in body
    assert "12 left" in body


def test_chosen_language_wins_over_accept_language(app, client):
    event_id = _event_id(app)

    switch = client.get("/language/fr?next=/", headers=ENGLISH)
    page = client.get(f"/events/{event_id}", headers=ENGLISH)
    index = client.get("/", headers=ENGLISH)

    assert switch.status_code in (302, 303)
    assert urlsplit(switch.headers["Location"]).path == "/"
    assert '<html lang="fr">' in _text(page)
    assert "Choisissez vos billets" in _text(page)
    assert "Prochains événements" in _text(index)


def test_switching_back_to_english_works(app, client):
    event_id = _event_id(app)
    client.get("/language/fr?next=/")

    client.get("/language/en?next=/", headers=FRENCH)
    page = client.get(f"/events/{event_id}", headers=FRENCH)

    assert '<html lang="en">' in _text(page)
    assert "Choose your tickets" in _text(page)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example", "//evil.example/path", "https:/evil.example", "evil.example", "javascript:alert(1)"],
)
def test_language_switch_refuses_an_open_redirect(client, target):
    response = client.get("/language/fr", query_string={"next": target})

    location = urlsplit(response.headers["Location"])
    assert response.status_code in (302, 303)
    assert location.netloc in ("", "localhost")
    assert location.path == "/"


def test_language_switch_keeps_a_local_next(client):
    response = client.get("/language/fr", query_string={"next": "/orders/find"})

    assert urlsplit(response.headers["Location"]).path == "/orders/find"


def test_language_switch_never_sends_a_browser_off_site_through_a_backslash(client):
    # Browsers read "/\evil.example" as "//evil.example"; the Location must not keep the backslash.
    response = client.get("/language/fr", query_string={"next": "/\\evil.example"})

    location = response.headers["Location"]
    assert "\\" not in location
    assert urlsplit(location).netloc in ("", "localhost")
    assert not urlsplit(location).path.startswith("//")


def test_unknown_language_is_not_found_and_changes_nothing(client):
    response = client.get("/language/de?next=/")
    after = client.get("/")

    assert response.status_code == 404
    assert '<html lang="en">' in _text(after)


# -- formats and messages in French ------------------------------------------------------


def test_money_is_written_the_french_way_on_a_french_page(app, client):
    event_id = _event_id(app, price_cents=1500, fee_cents=150)

    french = _text(client.get(f"/events/{event_id}", headers=FRENCH))
    english = _text(client.get(f"/events/{event_id}", headers=ENGLISH))

    assert "15,00 €" in french
    assert "1,50 € de frais de service" in french
    assert "€15.00" in english


@pytest.mark.parametrize(
    ("zone", "locale", "expected"),
    [
        ("Europe/Paris", "en", "20:00, Paris time"),
        ("Europe/Paris", "fr", "20:00, heure locale à Paris"),
        # "heure de Amsterdam" would need an elision; the phrasing needs none for any city.
        ("Europe/Amsterdam", "fr", "20:00, heure locale à Amsterdam"),
        ("Europe/Brussels", "fr", "20:00, heure locale à Bruxelles"),
    ],
)
def test_times_are_named_by_the_events_city_in_the_readers_language(app, zone, locale, expected):
    starts = dt.datetime(2027, 1, 15, 20, 0, tzinfo=ZoneInfo(zone))
    with app.test_request_context(), force_locale(locale):
        assert local_time(starts.astimezone(dt.UTC), zone, "time") == expected


def test_buy_form_errors_are_in_french_for_a_french_reader(app, client):
    event_id, type_id = _event_and_type_ids(app)
    url = f"/events/{event_id}"

    response = post_form(
        client, url, f"{url}/orders", {"email": "not-an-address", f"qty-{type_id}": "1"}, headers=FRENCH
    )

    body = _text(response)
    assert response.status_code == 422
    assert "Certains champs sont à vérifier." in body
    assert "Saisissez une adresse e-mail valide" in body
    assert "Enter a valid email address" not in body


@pytest.mark.parametrize(
    ("headers", "messages"),
    [
        (
            FRENCH,
            {
                "email": "Ce champ est obligatoire.",
                "items[0]": "Chaque élément doit être un objet avec ticket_type_id et quantity.",
                "items[1].quantity": "Doit être compris entre 1 et 50.",
                "fax": "Champ inconnu.",
            },
        ),
        (
            ENGLISH,
            {
                "email": "This field is required.",
                "items[0]": "Each item must be an object with ticket_type_id and quantity.",
                "items[1].quantity": "Must be between 1 and 50.",
                "fax": "Unknown field.",
            },
        ),
    ],
    ids=["fr", "en"],
)
def test_api_field_errors_speak_the_readers_language(client, headers, messages):
    body = {"event_id": "x", "items": ["x", {"ticket_type_id": "a6f8a3b2-6d8e-4c3a-9d52-1b1c0b2f8e11", "quantity": 0}]}

    first = client.post("/api/v1/orders", json={**body, "fax": "1"}, headers=headers)
    other = client.post("/api/v1/orders", json={**body, "fax": "1"}, headers=FRENCH if headers is ENGLISH else ENGLISH)
    again = client.post("/api/v1/orders", json={**body, "fax": "1"}, headers=headers)

    assert first.status_code == 422
    assert first.get_json()["errors"] == messages
    assert other.get_json()["errors"] != messages
    assert again.get_json()["errors"] == messages


def test_error_page_is_in_french_for_a_french_reader(client):
    response = client.get("/orders/NOPE/not-a-token", headers=FRENCH)

    assert response.status_code == 404
    assert "Aucune commande ne correspond à ce lien." in _text(response)


# -- the catalogues ----------------------------------------------------------------------
# Every language with a folder under ticketing/translations is checked the same way, so a
# language added by `pybabel init` is held to the same standard as French from day one.


def _po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def _mo_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"


CATALOG_LANGUAGES = sorted(path.parent.parent.name for path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


@pytest.fixture(scope="module", params=CATALOG_LANGUAGES)
def catalog(request):  # type: ignore[no-untyped-def]
    with _po_path(request.param).open("rb") as po:
        return read_po(po, locale=request.param)


@pytest.fixture(scope="module")
def extracted_catalog(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Extract the strings afresh, with the same config and keywords as docs/translations.md."""
    output = tmp_path_factory.mktemp("i18n") / "messages.pot"
    command = ExtractMessages()
    command.initialize_options()
    command.mapping_file = str(BABEL_CFG)
    command.keywords = ["N_", "lazy_gettext"]
    command.output_file = str(output)
    command.input_paths = [str(PROJECT_ROOT / "ticketing"), str(PROJECT_ROOT / "templates")]
    command.finalize_options()
    command.run()
    with output.open("rb") as pot:
        return read_po(pot)


def test_every_offered_language_has_a_catalogue():
    from config import BaseConfig

    assert "fr" in CATALOG_LANGUAGES
    assert set(BaseConfig.LANGUAGES) - {BaseConfig.BABEL_DEFAULT_LOCALE} == set(CATALOG_LANGUAGES)


def test_catalogue_translates_every_message(catalog):
    untranslated = [
        _show(_key(message))
        for message in catalog
        if message.id
        and (
            not all(_strings(message)) or len(_strings(message)) != (catalog.num_plurals if message.pluralizable else 1)
        )
    ]
    fuzzy = [_show(_key(message)) for message in catalog if message.id and message.fuzzy]

    assert len(catalog) > 100
    assert not untranslated, f"untranslated in the {catalog.locale} messages.po: " + ", ".join(untranslated)
    assert not fuzzy, f"fuzzy in the {catalog.locale} messages.po (review, then drop the flag): " + ", ".join(fuzzy)
    assert not catalog.fuzzy, f"the header of the {catalog.locale} messages.po is marked fuzzy"


def test_catalogue_placeholders_match_the_english(catalog):
    problems = [f"{_show(_key(message))}: {error}" for message, errors in catalog.check() for error in errors]

    assert not problems, f"bad placeholders in the {catalog.locale} messages.po: " + "; ".join(problems)


def test_mo_is_compiled_from_the_current_po(catalog):
    """What the app loads is the .mo: it must hold exactly what the .po says.

    Compared by content rather than by file times: git does not keep them, so in a fresh
    clone the .mo may look older or newer than the .po whatever it holds.
    """
    with _mo_path(str(catalog.locale)).open("rb") as mo:
        compiled = {_key(message): _strings(message) for message in read_mo(mo) if message.id}
    written = {_key(message): _strings(message) for message in catalog if message.id}

    stale = sorted(_show(key) for key in written if compiled.get(key) != written[key])
    extra = sorted(_show(key) for key in compiled.keys() - written.keys())

    assert not stale, f"the {catalog.locale} messages.mo is out of date (pybabel compile); differs on: " + ", ".join(
        stale
    )
    assert not extra, f"the {catalog.locale} messages.mo holds messages its .po no longer has: " + ", ".join(extra)


def test_every_string_in_the_code_is_in_the_catalogue(catalog, extracted_catalog):
    known = {_key(message) for message in catalog if message.id}
    wanted = {_key(message): message for message in extracted_catalog if message.id}

    missing = sorted(
        f"{_show(key)} at {', '.join(f'{_relative(path)}:{line}' for path, line in message.locations)}"
        for key, message in wanted.items()
        if key not in known
    )

    assert len(wanted) > 100, "extraction found too few strings: is babel.cfg right?"
    assert not missing, (
        f"strings missing from ticketing/translations/{catalog.locale}/LC_MESSAGES/messages.po "
        "(docs/translations.md says how to add them): " + "; ".join(missing)
    )


def test_extraction_sees_every_kind_of_marker(extracted_catalog):
    """One string of each marker the code uses, so a broken babel.cfg or keyword list shows."""
    ids = {message.id for message in extracted_catalog}

    assert "Sold out" in ids  # N_() in ticketing/errors.py
    assert "This field is required." in ids  # gettext as _ in Python
    assert "Skip to content" in ids  # _() in a Jinja page
    assert "See my order:" in ids  # _() in a plain-text mail template
    assert ("Your ticket", "Your %(num)d tickets") in ids  # ngettext() in a Jinja page

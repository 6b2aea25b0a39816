"""Master-key and blind-index-key rotation: afterwards the old key can go, and everyone is
still readable and findable."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import TEST_KEYS, make_app, published_event
from tests.privacy.helpers import buy
from ticketing.crypto.keys import new_blind_index_key, new_master_key_entry
from ticketing.extensions import db, keyring
from ticketing.privacy.models import DataKey, Person
from ticketing.privacy.vault import email_indexes, find_person_ids, read_person

EMAILS = [f"buyer{i}@example.org" for i in range(5)]


def find_person_id(session, ring, email):  # type: ignore[no-untyped-def]
    """The one record of an address that bought once here, or None when it is not found."""
    found = find_person_ids(session, email_indexes(ring, email))
    assert len(found) <= 1
    return found[0] if found else None


def _database(app) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"]


def _key_file_with_test_keys(app) -> None:
    """The development key file, holding the keys the purchases were made with."""
    path = Path(app.instance_path) / "keys.json"
    path.write_text(json.dumps(TEST_KEYS))
    path.chmod(0o600)


def test_rotate_master_key_with_the_development_key_file(app, client):
    event = published_event(app)
    for email in EMAILS:
        buy(client, event, email)
    _key_file_with_test_keys(app)
    dev_app = make_app(Path(app.instance_path), _database(app), TICKETING_MASTER_KEYS="")
    with dev_app.app_context():
        first = keyring().newest_master_key_id

    result = dev_app.test_cli_runner().invoke(args=["rotate-master-key", "--new-key", "--batch-size", "2"])
    again = dev_app.test_cli_runner().invoke(args=["rotate-master-key", "--remove-old"])

    assert result.exit_code == 0, result.output
    keys = json.loads((Path(app.instance_path) / "keys.json").read_text())["master_keys"]
    assert len(keys.split(",")) == 1 and not keys.startswith(first)
    with dev_app.app_context():
        newest = keyring().newest_master_key_id
        assert set(db.session.execute(sa.select(DataKey.master_key_id)).scalars()) == {newest}
        for email in EMAILS:
            person_id = find_person_id(db.session, keyring(), email)
            assert read_person(db.session, keyring(), person_id).email == email
    assert again.exit_code == 0, again.output


def test_rotate_master_key_from_the_environment_then_drop_the_old_key(app, client):
    event = published_event(app)
    for email in EMAILS:
        buy(client, event, email)
    new_entry = new_master_key_entry()
    both = make_app(
        Path(app.instance_path), _database(app), TICKETING_MASTER_KEYS=f"{TEST_KEYS['master_keys']},{new_entry}"
    )

    result = both.test_cli_runner().invoke(args=["rotate-master-key"])

    assert result.exit_code == 0, result.output
    assert "can now be removed" in result.output
    only_new = make_app(Path(app.instance_path), _database(app), TICKETING_MASTER_KEYS=new_entry)
    with only_new.app_context():
        for email in EMAILS:
            person_id = find_person_id(db.session, keyring(), email)
            assert read_person(db.session, keyring(), person_id).email == email


def test_rotate_blind_index_key_from_the_environment(app, client):
    event = published_event(app)
    for email in EMAILS:
        buy(client, event, email)
    new_key = new_blind_index_key()
    rotating = make_app(
        Path(app.instance_path),
        _database(app),
        TICKETING_BLIND_INDEX_KEY=new_key,
        TICKETING_PREVIOUS_BLIND_INDEX_KEYS=TEST_KEYS["blind_index_key"],
    )
    with rotating.app_context():
        # During the rebuild, people are still found through the previous key.
        assert find_person_id(db.session, keyring(), EMAILS[0]) is not None

    result = rotating.test_cli_runner().invoke(args=["rotate-blind-index-key", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    finished = make_app(Path(app.instance_path), _database(app), TICKETING_BLIND_INDEX_KEY=new_key)
    old_only = make_app(Path(app.instance_path), _database(app))
    with finished.app_context():
        ids = {find_person_id(db.session, keyring(), email) for email in EMAILS}
        assert None not in ids and len(ids) == len(EMAILS)
        assert set(db.session.execute(sa.select(Person.index_key_id)).scalars()) == {keyring().blind_index_key_id}
    with old_only.app_context():
        assert find_person_id(db.session, keyring(), EMAILS[0]) is None


def test_rotate_blind_index_key_with_the_development_key_file(app, client):
    event = published_event(app)
    for email in EMAILS:
        buy(client, event, email)
    _key_file_with_test_keys(app)
    dev_app = make_app(Path(app.instance_path), _database(app), TICKETING_BLIND_INDEX_KEY="")

    result = dev_app.test_cli_runner().invoke(args=["rotate-blind-index-key"])

    assert result.exit_code == 0, result.output
    values = json.loads((Path(app.instance_path) / "keys.json").read_text())
    assert values["blind_index_key"] != TEST_KEYS["blind_index_key"] and values["previous_blind_index_keys"] == ""
    reloaded = make_app(Path(app.instance_path), _database(app), TICKETING_BLIND_INDEX_KEY="")
    with reloaded.app_context():
        assert all(find_person_id(db.session, keyring(), email) for email in EMAILS)


def test_mid_rotation_the_mailbox_finds_records_under_the_old_and_the_new_index(app, client):
    event = published_event(app)
    buy(client, event, EMAILS[0])
    rotating = make_app(
        Path(app.instance_path),
        _database(app),
        TICKETING_BLIND_INDEX_KEY=new_blind_index_key(),
        TICKETING_PREVIOUS_BLIND_INDEX_KEYS=TEST_KEYS["blind_index_key"],
    )

    buy(rotating.test_client(), event, EMAILS[0])

    with rotating.app_context():
        found = find_person_ids(db.session, email_indexes(keyring(), EMAILS[0]))
        assert len(found) == 2
        assert len(set(db.session.execute(sa.select(Person.index_key_id)).scalars())) == 2

"""Master-key epochs: every data key moves to the newest master key, an old key is
destroyed once nothing uses it, and a copy of a data key wrapped under a destroyed key
(what a backup holds) no longer opens with any key left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import TEST_KEYS, dispose, make_app, published_event
from tests.privacy.helpers import buy
from ticketing.checkout.models import Order
from ticketing.crypto import DecryptionFailed, KeyRing, unwrap_data_key
from ticketing.crypto.keys import new_master_key_entry
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy.models import DataKey
from ticketing.privacy.services import rewrap_data_keys
from ticketing.privacy.vault import read_person

TODAY = utcnow().date()
KEY_LINE = re.compile(r"^TICKETING_MASTER_KEYS=(\S+)$", re.MULTILINE)


def _entry(days_old: int) -> str:
    return new_master_key_entry(TODAY - dt.timedelta(days=days_old))


def _key_id(entry: str) -> str:
    return entry.partition(":")[0]


@pytest.fixture
def apps(app: Flask) -> Iterator:
    """``apps(**environ)``: more apps on the test's database and instance folder (another
    process, another configuration), each disposed of at the end."""
    made: list[Flask] = []

    def build(**environ: str) -> Flask:
        other = make_app(Path(app.instance_path), app.config["SQLALCHEMY_DATABASE_URI"], **environ)
        made.append(other)
        return other

    yield build
    for other in made:
        dispose(other)


def _key_file(app: Flask, master_keys: str) -> Path:
    """The development key file, with the test's keys and these master keys."""
    path = Path(app.instance_path) / "keys.json"
    path.write_text(json.dumps({**TEST_KEYS, "master_keys": master_keys}))
    path.chmod(0o600)
    return path


def _file_keys(path: Path) -> list[str]:
    return [_key_id(entry) for entry in json.loads(path.read_text())["master_keys"].split(",")]


def _wrapped(app: Flask, code: str) -> tuple[uuid.UUID, str, bytes]:
    with app.app_context():
        person_id = db.session.execute(sa.select(Order.person_id).where(Order.code == code)).scalar_one()
        key = db.session.get(DataKey, person_id)
        return person_id, key.master_key_id, key.wrapped_key


def _opens_with_any_key(ring: KeyRing, person_id: uuid.UUID, key_id: str, wrapped: bytes) -> bool:
    """Try the copy with every master key the app holds, under its own key id and under the
    id it was wrapped with (the id is part of what the wrapping authenticates)."""
    for raw in ring.master_keys.values():
        for named in {key_id, *ring.master_keys}:
            trial = dataclasses.replace(ring, master_keys={named: raw}, newest_master_key_id=named)
            try:
                unwrap_data_key(trial, person_id, named, wrapped)
                return True
            except DecryptionFailed:
                pass
    return False


def _key_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(sa.select(DataKey.master_key_id, sa.func.count()).group_by(DataKey.master_key_id))
        return {key_id: count for key_id, count in rows}


def _all_readable(app: Flask, codes: list[str]) -> bool:
    with app.app_context():
        person_ids = db.session.execute(sa.select(Order.person_id).where(Order.code.in_(codes))).scalars().all()
        return all(read_person(db.session, keyring(), person_id) is not None for person_id in person_ids)


def test_a_data_key_under_a_destroyed_epoch_no_longer_unwraps(app, client, apps):
    order = buy(client, published_event(app), "epoch.one@example.org")
    person_id, old_key, copy = _wrapped(app, order["code"])
    path = _key_file(app, TEST_KEYS["master_keys"])
    dev = apps(TICKETING_MASTER_KEYS="")

    rotated = dev.test_cli_runner().invoke(args=["rotate-master-key", "--new-key"])
    destroyed = dev.test_cli_runner().invoke(args=["rotate-master-key", "--remove-old"])

    assert rotated.exit_code == 0 and destroyed.exit_code == 0, rotated.output + destroyed.output
    assert f"Destroyed old master key(s) {old_key}" in destroyed.output
    assert old_key not in _file_keys(path) and TEST_KEYS["master_keys"].partition(":")[2] not in path.read_text()
    reloaded = apps(TICKETING_MASTER_KEYS="")
    with reloaded.app_context():
        ring = keyring()
        with pytest.raises(DecryptionFailed):
            unwrap_data_key(ring, person_id, old_key, copy)
        assert not _opens_with_any_key(ring, person_id, old_key, copy)
    assert _all_readable(reloaded, [order["code"]])


def test_rewrapping_resumes_where_it_stopped(app, client, apps):
    event = published_event(app)
    codes = [buy(client, event, f"resume{n}@example.org")["code"] for n in range(5)]
    new_entry = _entry(0)
    both = apps(TICKETING_MASTER_KEYS=f"{TEST_KEYS['master_keys']},{new_entry}")
    old_key = _key_id(TEST_KEYS["master_keys"])

    with both.app_context():
        batches = rewrap_data_keys(db.session, keyring(), batch_size=2)
        first = next(batches)
        batches.close()
    halfway = _key_counts(app)
    readable_halfway = _all_readable(both, codes)
    finished = both.test_cli_runner().invoke(args=["rotate-master-key", "--batch-size", "2"])

    assert first == 2
    assert halfway == {old_key: 3, _key_id(new_entry): 2}
    assert readable_halfway
    assert finished.exit_code == 0, finished.output
    assert _key_counts(app) == {_key_id(new_entry): 5}
    assert _all_readable(apps(TICKETING_MASTER_KEYS=new_entry), codes)


def test_destroying_a_master_key_still_in_use_is_refused(app, client, apps):
    buy(client, published_event(app), "still.used@example.org")
    old_key, new_entry = _key_id(TEST_KEYS["master_keys"]), _entry(0)
    both = f"{TEST_KEYS['master_keys']},{new_entry}"
    from_env = apps(TICKETING_MASTER_KEYS=both)
    path = _key_file(app, both)
    from_file = apps(TICKETING_MASTER_KEYS="")

    env_refused = from_env.test_cli_runner().invoke(args=["destroy-master-key", old_key])
    file_refused = from_file.test_cli_runner().invoke(args=["destroy-master-key", old_key])
    newest_refused = from_env.test_cli_runner().invoke(args=["destroy-master-key", _key_id(new_entry)])
    from_env.test_cli_runner().invoke(args=["rotate-master-key"])
    allowed = from_env.test_cli_runner().invoke(args=["destroy-master-key", old_key])

    assert env_refused.exit_code != 0 and "still wraps 1 data key" in env_refused.output
    assert file_refused.exit_code != 0 and old_key in _file_keys(path)
    assert newest_refused.exit_code != 0 and "is the newest" in newest_refused.output
    assert allowed.exit_code == 0, allowed.output
    assert KEY_LINE.search(allowed.output).group(1) == new_entry


def test_the_daily_run_keeps_the_epochs_of_the_development_key_file(app, client, apps):
    oldest, middle = _entry(40), _entry(15)
    event = published_event(app)
    first = buy(apps(TICKETING_MASTER_KEYS=oldest).test_client(), event, "daily.a@example.org")
    second = buy(apps(TICKETING_MASTER_KEYS=f"{oldest},{middle}").test_client(), event, "daily.b@example.org")
    person_id, _key, copy = _wrapped(app, first["code"])
    path = _key_file(app, f"{oldest},{middle}")

    daily = apps(TICKETING_MASTER_KEYS="").test_cli_runner().invoke(args=["rotate-master-key"])

    assert daily.exit_code == 0, daily.output
    kept = _file_keys(path)
    # The oldest goes (its successor is 15 days old); the middle one stays until its
    # successor, made just now, is a day old; the new one wraps everything.
    assert kept[0] == _key_id(middle) and len(kept) == 2 and kept[1].startswith(f"e{TODAY.isoformat()}.")
    assert _key_counts(app) == {kept[1]: 2}
    reloaded = apps(TICKETING_MASTER_KEYS="")
    assert _all_readable(reloaded, [first["code"], second["code"]])
    with reloaded.app_context():
        assert not _opens_with_any_key(keyring(), person_id, _key_id(oldest), copy)


def test_the_production_cycle_prints_each_step_and_drops_the_old_epoch(app, client, apps):
    first_entry = _entry(15)
    start = apps(TICKETING_MASTER_KEYS=first_entry)
    order = buy(start.test_client(), published_event(app), "production.cycle@example.org")
    person_id, _key, copy = _wrapped(app, order["code"])

    reminded = start.test_cli_runner().invoke(args=["rotate-master-key"])
    step_one = start.test_cli_runner().invoke(args=["rotate-master-key", "--new-key"])
    line_one = KEY_LINE.search(step_one.output).group(1)
    after_restart = apps(TICKETING_MASTER_KEYS=line_one)
    daily = after_restart.test_cli_runner().invoke(args=["rotate-master-key"])
    step_two = after_restart.test_cli_runner().invoke(args=["rotate-master-key", "--new-key"])
    line_two = KEY_LINE.search(step_two.output).group(1)
    final = apps(TICKETING_MASTER_KEYS=line_two)

    assert reminded.exit_code == 0 and "rotate-master-key --new-key" in reminded.output
    assert line_one.startswith(f"{first_entry},")
    assert daily.exit_code == 0 and _key_counts(app) == {_key_id(line_one.split(",")[1]): 1}
    assert "can now be removed" in daily.output
    assert line_two.startswith(line_one.split(",")[1] + ",") and first_entry not in line_two
    assert _all_readable(final, [order["code"]])
    with final.app_context():
        assert not _opens_with_any_key(keyring(), person_id, _key_id(first_entry), copy)


@pytest.mark.parametrize(
    ("master_keys", "state", "status_exit"),
    [
        (lambda: _entry(3), "ok", 0),
        (lambda: _entry(20), "due", 0),
        (lambda: f"{_entry(31)},{_entry(10)}", "overdue", 1),
        (lambda: "m0a1b2c:" + TEST_KEYS["master_keys"].partition(":")[2], "overdue", 1),
    ],
    ids=["fresh", "due", "retired-key-too-old", "undated"],
)
def test_healthz_status_and_the_daily_run_say_when_an_epoch_is_due(app, apps, master_keys, state, status_exit):
    configured = apps(TICKETING_MASTER_KEYS=master_keys())

    health = configured.test_client().get("/healthz").get_json()["master_keys"]
    status = configured.test_cli_runner().invoke(args=["master-keys"])
    daily = configured.test_cli_runner().invoke(args=["rotate-master-key"])

    assert health["state"] == state
    assert status.exit_code == daily.exit_code == status_exit, status.output + daily.output
    if state != "ok":
        assert "rotate-master-key --new-key" in status.output


def test_a_running_app_loads_the_key_file_again_after_another_process_rotates_it(app, apps):
    _key_file(app, TEST_KEYS["master_keys"])
    web = apps(TICKETING_MASTER_KEYS="")
    with web.app_context():
        before = keyring().newest_master_key_id

    apps(TICKETING_MASTER_KEYS="").test_cli_runner().invoke(args=["rotate-master-key", "--new-key"])
    order = buy(web.test_client(), published_event(app), "running.app@example.org")

    _person_id, wrapped_under, _copy = _wrapped(app, order["code"])
    assert wrapped_under != before and wrapped_under.startswith(f"e{TODAY.isoformat()}.")

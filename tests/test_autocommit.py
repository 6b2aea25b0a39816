"""The kept autocommit connections' libpq path (``fetch_raw``), against psycopg's own reading."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticketing.autocommit import AutocommitConnections, RawStatement, autocommit_connections, pg_text, pg_timestamp

ECHO = RawStatement(
    b"guichet_test_echo",
    b"SELECT $1::timestamptz, $2::timestamp, $3::text, pg_backend_pid()::text",
)
AS_UUID = RawStatement(b"guichet_test_uuid", b"SELECT $1::uuid")
NO_ROW = RawStatement(b"guichet_test_no_row", b"SELECT 1 WHERE false")

instants = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC))
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


@pytest.fixture
def connections(postgres_url):
    kept = autocommit_connections(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1), testing=False)
    yield kept
    kept.close()


def echo(kept: AutocommitConnections, instant: dt.datetime, text: str) -> tuple[bytes | None, ...]:
    parameters = (instant.isoformat().encode(), instant.replace(tzinfo=None).isoformat().encode(), text.encode())
    row = kept.fetch_raw(ECHO, parameters, repeatable=True)
    assert row is not None
    return row


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instant=instants, text=texts)
def test_binary_columns_read_as_psycopg_reads_them(connections, instant, text):
    # A session time zone far from UTC: binary timestamptz must not depend on it.
    connections.run("SELECT set_config('TimeZone', 'Pacific/Chatham', false)", ())

    with_tz, naive, echoed, _pid = echo(connections, instant, text)
    by_psycopg = connections.fetch_one("SELECT %s::timestamptz, %s::text", (instant, text), repeatable=True)

    assert pg_timestamp(with_tz) == by_psycopg[0] == instant
    assert pg_timestamp(naive) == instant  # a naive timestamp holds UTC, as UTCDateTime stores it
    assert pg_timestamp(with_tz).tzinfo is dt.UTC
    assert pg_text(echoed) == by_psycopg[1] == text


def test_null_columns_and_no_rows(connections):
    row = connections.fetch_raw(AS_UUID, (None,), repeatable=True)

    assert row == (None,)
    assert pg_timestamp(None) is None and pg_text(None) is None
    assert connections.fetch_raw(NO_ROW, (), repeatable=True) is None


def test_a_statement_lost_on_the_server_is_prepared_again_on_the_same_connection(postgres_url):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1)
    connections = AutocommitConnections(engine, keep_connections=False)  # the pool's one connection each time
    instant = dt.datetime(2026, 12, 3, 18, 30, tzinfo=dt.UTC)
    try:
        first_pid = echo(connections, instant, "a")[3]
        pooled = engine.raw_connection()
        pooled.driver_connection.execute("DEALLOCATE ALL")  # what a DISCARD ALL or a pooler may do
        pooled.driver_connection.commit()
        pooled.close()

        with_tz, _naive, text, pid = echo(connections, instant, "b")

        assert (pg_timestamp(with_tz), pg_text(text)) == (instant, "b")
        assert pid == first_pid  # prepared again, not reconnected
    finally:
        connections.close()


def test_failing_statements_raise_psycopgs_errors_and_the_next_one_runs(connections):
    broken = RawStatement(b"guichet_test_broken", b"SELECT FROM nowhere_at_all")

    with pytest.raises(psycopg.errors.UndefinedTable):  # refused when it is prepared
        connections.fetch_raw(broken, (), repeatable=True)
    with pytest.raises(psycopg.errors.InvalidTextRepresentation) as raised:  # refused when it runs
        connections.fetch_raw(AS_UUID, (b"not-a-uuid",), repeatable=True)

    assert "uuid" in str(raised.value)
    viewer_id = uuid.uuid4()
    assert connections.fetch_raw(AS_UUID, (str(viewer_id).encode(),), repeatable=True) == (viewer_id.bytes,)

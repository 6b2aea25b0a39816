"""The stream API's body: a new publisher key."""

from __future__ import annotations

import marshmallow as ma

from ticketing.schema import Out


class PublisherKey(Out):
    stream_name = ma.fields.String(required=True)
    publisher_key = ma.fields.String(required=True, metadata={"description": "secret, answered this once"})


PUBLISHER_KEY = PublisherKey()

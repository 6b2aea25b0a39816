"""The bare stack that ``flash_sale.py`` compares checkout with.

Flask + Flask-SQLAlchemy + psycopg on the same PostgreSQL database, served by the same
gunicorn settings, with one POST route that reads a JSON body and inserts one row. The
engine options match Guichet's (``pool_recycle``, no pre-ping), so that the ratio printed by the
benchmark is the cost of checkout itself, not of a different connection setup.

Served as ``gunicorn --chdir bench 'baseline_app:create_app()'`` with
``BASELINE_DATABASE_URL`` in the environment; the benchmark creates the table first with
``create_schema`` (four workers racing ``CREATE TABLE`` would fail).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL_VARIABLE = "BASELINE_DATABASE_URL"


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Hit(Base):
    __tablename__ = "baseline_hit"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ[DATABASE_URL_VARIABLE]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_recycle": 1800}
    db.init_app(app)

    @app.post("/hits")
    def create_hit() -> tuple[Response, int]:
        payload = request.get_json(silent=True)
        email = payload.get("email") if isinstance(payload, dict) else None
        if not isinstance(email, str) or not email:
            return jsonify(error="email is required"), 422
        # The id is made here so that answering needs no read after the commit.
        hit_id = uuid.uuid4()
        db.session.add(Hit(id=hit_id, email=email[:254], created_at=dt.datetime.now(dt.UTC)))
        db.session.commit()
        return jsonify(id=str(hit_id)), 201

    @app.get("/healthz")
    def healthz() -> Response:
        db.session.execute(sa.text("SELECT 1"))
        return jsonify(status="ok")

    return app


def create_schema(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()

"""The organisers' back office at ``/manage/``: staff accounts and roles, organiser
settings, API tokens, and the pages later areas build on (events, orders, door devices).

Comes last in the dependency order: it may import every domain; no domain imports it.
``init_app`` wires it into an app: the blueprint, and the vault's view of staff records.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ticketing.backoffice.blueprint import bp, register_pages
    from ticketing.backoffice.person_links import StaffLinks

    register_pages()
    app.register_blueprint(bp)
    # Staff records are vault records too: the purge keeps them while the account lives.
    app.extensions["guichet.person_links"].append(StaffLinks())

"""Entry point for gunicorn and ``flask --app wsgi``: ``gunicorn -w 4 wsgi:app``."""

from ticketing import create_app

app = create_app()

"""Entry point for gunicorn and ``flask --app wsgi``: ``gunicorn -k ticketing.serving.SyncWorker wsgi:app``."""

from ticketing import create_app

app = create_app()

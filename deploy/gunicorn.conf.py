"""gunicorn's settings for Guichet (``gunicorn -c deploy/gunicorn.conf.py wsgi:app``).

Sync workers, 2 x cores + 1, behind nginx: nginx opens a connection per request and the
kernel hands it to an idle worker. The bind address is nginx's upstream; the access log
stays off (nginx keeps one, without the secret parts of URLs).
"""

import multiprocessing

bind = "127.0.0.1:8000"
worker_class = "sync"
workers = 2 * multiprocessing.cpu_count() + 1
# A request that takes longer than this is a bug or a dead database: the worker is
# replaced. A door scan or an order takes milliseconds.
timeout = 30
graceful_timeout = 20
# Recycle workers now and then, so that a slow leak never grows.
max_requests = 5000
max_requests_jitter = 500
accesslog = None
errorlog = "-"
loglevel = "info"
# nginx is the only client: it sends the real client's address in X-Forwarded-For, which
# the app reads through TICKETING_TRUSTED_PROXIES, not through gunicorn.
forwarded_allow_ips = "127.0.0.1"

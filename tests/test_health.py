import datetime as dt

from sqlalchemy import select, update

from tests.checkout.test_orders import api_order
from tests.conftest import MAIL_WORKER, make_app, published_event
from ticketing.extensions import db
from ticketing.mail.models import QueuedMail
from ticketing.mail.queue import MAX_ATTEMPTS
from ticketing.models import utcnow


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["mail"] == {"due": 0, "oldest_due_seconds": None, "given_up": 0}
    assert body["master_keys"]["state"] == "ok"
    assert body["jobs"] == {}  # no worker has run yet


def test_healthz_tells_when_each_worker_job_last_finished(app, client, runner):
    runner.invoke(args=["worker", "--once"])

    jobs = client.get("/healthz").get_json()["jobs"]

    assert jobs["expire-holds"]["outcome"] == "ok"
    assert 0 <= jobs["expire-holds"]["finished_seconds_ago"] < 60


@MAIL_WORKER
def test_healthz_tells_how_far_mail_delivery_is_behind(app, client):
    event = published_event(app, price_cents=0, fee_cents=0, capacity=5)
    for _ in range(3):
        api_order(client, event)
    with app.app_context():
        [first, second, _third] = db.session.scalars(select(QueuedMail).order_by(QueuedMail.created_at)).all()
        first.created_at = utcnow() - dt.timedelta(minutes=10)
        db.session.execute(update(QueuedMail).where(QueuedMail.id == second.id).values(attempts=MAX_ATTEMPTS))
        db.session.commit()

    response = client.get("/healthz")

    mail = response.get_json()["mail"]
    assert (mail["due"], mail["given_up"]) == (2, 1)
    assert 600 <= mail["oldest_due_seconds"] < 660


def test_healthz_answers_503_when_the_database_is_down(tmp_path):
    app = make_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "database unreachable"}


def test_api_answers_503_with_retry_after_when_the_database_is_down(tmp_path):
    app = make_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    response = app.test_client().get("/api/v1/events")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.get_json()["code"] == "database_unavailable"


def test_pages_answer_a_503_page_when_the_database_is_down(tmp_path):
    app = make_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    response = app.test_client().get("/")

    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True)

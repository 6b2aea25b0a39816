from tests.conftest import make_app


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_answers_503_when_the_database_is_down(tmp_path):
    app = make_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "database unreachable"}

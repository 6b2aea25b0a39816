from tests.conftest import make_event


def test_healthz_answers_when_the_database_does(client):
    assert client.get("/healthz").status_code == 200


def test_event_page_lists_availability(app, client):
    with app.app_context():
        event = make_event(capacity=12)
        event_id = event.id

    page = client.get(f"/events/{event_id}")

    assert page.status_code == 200
    assert "12 left" in page.get_data(as_text=True)

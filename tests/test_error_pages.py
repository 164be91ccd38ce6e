"""The 403 and 404 pages keep the top bar and say what to do, with DEBUG off as in production."""

import uuid
from decimal import Decimal

import pytest
from django.test import override_settings

from paylinks.create import create_link
from tests.conftest import draft_for

pytestmark = pytest.mark.django_db


def top_bar(html: str) -> str:
    return html[html.index('<header class="topbar">') : html.index("</header>")]


@override_settings(DEBUG=False)
def test_a_missing_link_is_a_404_page_with_the_top_bar_and_what_to_do(client, receptionist):
    client.force_login(receptionist)
    response = client.get(f"/links/{uuid.uuid4()}/")
    assert response.status_code == 404
    html = response.content.decode()
    bar = top_bar(html)
    assert 'href="/"' in bar and "Reception" in bar and "Links" in bar
    assert "Page not found" in html
    assert "What you can do" in html
    assert 'href="/links/"' in html[html.index("What you can do") :]


@override_settings(DEBUG=False)
def test_an_address_that_matches_nothing_is_the_same_404_page(client, receptionist, practice):
    client.force_login(receptionist)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    bar = top_bar(response.content.decode())
    assert practice.name in bar  # where the person is working, as on every page
    assert "Log out" in bar


@override_settings(DEBUG=False)
def test_someone_logged_out_is_told_to_log_in(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<header class="topbar">' in html
    assert 'href="/accounts/login/"' in html[html.index("What you can do") :]


@override_settings(DEBUG=False)
def test_a_receptionist_sent_to_a_manager_s_decision_gets_a_403_that_says_why(
    client, receptionist, invoice
):
    link = create_link(draft_for(invoice, receptionist, amount=Decimal("5.00")))
    client.force_login(receptionist)
    response = client.get(f"/links/{link.code}/review/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Reception" in top_bar(html)
    assert "Only a manager or an admin decides which Provet link this is." in html
    assert "Ask a manager or your practice" in html


def test_a_request_django_refuses_is_problem_json_in_the_api_and_a_page_elsewhere(client):
    """A Host header that isn't one of ALLOWED_HOSTS is refused before any view (400)."""
    api = client.get("/api/v1/links/", HTTP_HOST="not allowed")
    assert api.status_code == 400
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["status"] == 400 and "HTTP_HOST" in api.json()["detail"]
    page = client.get("/links/", HTTP_HOST="not allowed")
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")

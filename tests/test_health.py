"""/healthz: the database, the broker and the poller, for a monitor, without a login."""

import datetime as dt

from django.utils import timezone

from clinics.models import Practice
from paylinks.polling import poll_due_links


def test_a_practice_the_poller_has_not_passed_over_makes_it_unhealthy(client, practice):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("unhealthy", "ok", "ok")
    assert body["polling"]["stale"] == 1


def test_after_a_pass_it_is_healthy_and_says_how_long_ago(client, practice):
    poll_due_links()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["polling"]["practices"] == 1 and body["polling"]["stale"] == 0
    assert body["polling"]["oldest_pass_seconds"] < 60
    assert practice.name not in response.content.decode()  # no names, no secrets
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_poller_that_stopped_minutes_ago_is_unhealthy(client, practice):
    Practice.objects.update(polled_at=timezone.now() - dt.timedelta(minutes=4))
    assert client.get("/healthz").status_code == 503


def test_a_paused_practice_still_counts_as_polled(client, practice):
    Practice.objects.update(paused_until=timezone.now() + dt.timedelta(minutes=10))
    poll_due_links()
    assert client.get("/healthz").status_code == 200

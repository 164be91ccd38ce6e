"""The weekly summary e-mail: who gets it, when, what it says, and never twice.

The week is the dashboard's (tests/test_dashboard.py `week`): 3–9 March 2025 at the Helsinki
practice, so its e-mail goes on Monday 10 March between 07:00 and 10:00 Helsinki time.
"""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import translation

from clinics.models import Membership, Profile
from paylinks.schedules import SCHEDULES
from reports import weekly
from reports.weekly import claim_week, send_weekly_summaries, send_weekly_summary
from tests import test_dashboard
from tests.conftest import make_user
from tests.racing import DEADLINE
from tests.test_dashboard import at

MONDAY = dt.date(2025, 3, 3)

# The dashboard's week of links, and the fixtures it stands on.
week, departments, colleague = (
    test_dashboard.week,
    test_dashboard.departments,
    test_dashboard.colleague,
)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.PAYLINKS_SITE_URL = "https://paylinks.example"


def asks(user, **fields) -> Profile:
    return Profile.objects.create(user=user, weekly_summary=True, **fields)


@pytest.fixture
def manager_who_asked(manager) -> Profile:
    manager.first_name, manager.last_name = "Mikko", "Virtanen"
    manager.save()
    return asks(manager)


def test_a_manager_gets_last_week_s_figures_on_monday_morning(
    week, manager_who_asked, synced_practice
):
    assert send_weekly_summaries(at(10, 8)) == 1
    (message,) = mail.outbox
    assert message.to == ["mikko@example.com"]
    assert message.subject == "PayLinks: your week 3 Mar – 9 Mar 2025"
    text = message.body
    assert "Hello Mikko Virtanen," in text
    assert synced_practice.name in text
    # The dashboard's week, worked out by hand in tests/test_dashboard.py.
    assert "Links sent: 8\n" in text
    assert "Paid: €270.00 (4 links)" in text
    assert "Collected: €730.00 (nothing in the previous 7 days)" in text
    assert "Outstanding: €55.00 (2 open links)" in text
    assert "Expired unpaid: €70.00 (1 link)" in text
    assert "Recovered by follow-ups: €0.00 (0 links)" in text
    dashboard = (
        f"https://paylinks.example/dashboard/?practice={synced_practice.code}"
        "&period=custom&start=2025-03-03&end=2025-03-09"
    )
    assert dashboard in text
    ((html, kind),) = message.alternatives
    assert kind == "text/html"
    assert f'<a href="{dashboard.replace("&", "&amp;")}">' in html
    assert "€730.00" in html
    assert Profile.objects.get(pk=manager_who_asked.pk).weekly_summary_sent_for == MONDAY


def test_the_link_in_the_e_mail_opens_the_same_figures(
    week, manager_who_asked, manager, client, synced_practice
):
    send_weekly_summaries(at(10, 8))
    url = next(word for word in mail.outbox[0].body.split() if "/dashboard/?" in word)
    client.force_login(manager)
    board = client.get(url.removeprefix("https://paylinks.example")).context["board"]
    assert (board.period.first, board.period.last) == (MONDAY, dt.date(2025, 3, 9))
    assert (board.totals.sent, board.money_in.collected_amount) == (8, Decimal("730.00"))


@pytest.mark.parametrize(
    "moment",
    [
        at(10, 6, 59),  # Monday, too early
        at(10, 10, 0),  # Monday, too late
        at(9, 8),  # Sunday
        at(11, 8),  # Tuesday
    ],
)
def test_nothing_goes_outside_monday_morning_in_the_practice_s_time_zone(
    synced_practice, manager_who_asked, moment
):
    assert send_weekly_summaries(moment) == 0
    assert mail.outbox == []
    assert Profile.objects.get(pk=manager_who_asked.pk).weekly_summary_sent_for is None


def test_monday_morning_is_the_practice_s_not_utc_s(synced_practice, manager_who_asked):
    """07:00 in Helsinki is 05:00 UTC."""
    assert send_weekly_summaries(dt.datetime(2025, 3, 10, 5, 30, tzinfo=dt.UTC)) == 1


def test_nothing_is_tried_where_no_e_mail_can_be_sent(settings, synced_practice, manager_who_asked):
    """Production without EMAIL_URL: no e-mail, no claim, and no box to tick."""
    settings.SENDS_EMAIL = False
    assert send_weekly_summaries(dt.datetime(2025, 3, 10, 5, 30, tzinfo=dt.UTC)) == 0
    assert Profile.objects.get(pk=manager_who_asked.pk).weekly_summary_sent_for is None
    client = Client()
    client.force_login(manager_who_asked.user)
    assert 'name="weekly_summary"' not in client.get("/profile/").content.decode()


def test_each_week_goes_once_however_often_the_hour_comes(synced_practice, manager_who_asked):
    for hour in (7, 8, 9):
        send_weekly_summaries(at(10, hour))
    assert len(mail.outbox) == 1
    send_weekly_summaries(at(17, 7, 30))
    assert len(mail.outbox) == 2
    assert "10 Mar – 16 Mar 2025" in mail.outbox[1].subject
    assert Profile.objects.get(pk=manager_who_asked.pk).weekly_summary_sent_for == dt.date(
        2025, 3, 10
    )


def test_only_those_who_asked_and_manage_a_practice_get_it(
    synced_practice, manager, receptionist, other_practice
):
    asks(receptionist)  # a receptionist who ticked it: no dashboard, no e-mail
    Profile.objects.create(user=manager, weekly_summary=False)
    left = make_user("lotta", synced_practice, Membership.Role.MANAGER)
    left.is_active = False
    left.save()
    asks(left)
    assert send_weekly_summaries(at(10, 8)) == 0
    assert mail.outbox == []


def test_a_manager_gets_only_the_practices_they_manage(
    week, manager_who_asked, manager, synced_practice, other_practice
):
    # Reception at the other practice: its figures are not the manager's.
    Membership.objects.create(user=manager, practice=other_practice, role="reception")
    send_weekly_summaries(at(10, 8))
    (message,) = mail.outbox
    assert synced_practice.name in message.body
    assert other_practice.name not in message.body
    assert str(other_practice.code) not in message.body


def test_a_manager_of_two_practices_gets_one_e_mail_with_both(
    week, manager_who_asked, manager, synced_practice, other_practice
):
    Membership.objects.create(user=manager, practice=other_practice, role="admin")
    send_weekly_summaries(at(10, 8))
    (message,) = mail.outbox
    assert synced_practice.name in message.body
    assert other_practice.name in message.body
    # The other practice's single link of the week, paid on 5 March.
    other = message.body.split(other_practice.name, 1)[1]
    assert "Links sent: 1\n" in other


def test_a_failed_send_leaves_the_week_to_the_next_hour(
    synced_practice, manager_who_asked, monkeypatch
):
    def broken(self, fail_silently=False):
        raise ConnectionRefusedError("no mail server")

    with monkeypatch.context() as patched:
        patched.setattr("django.core.mail.EmailMultiAlternatives.send", broken)
        assert send_weekly_summaries(at(10, 7, 5)) == 0
    assert Profile.objects.get(pk=manager_who_asked.pk).weekly_summary_sent_for is None
    assert send_weekly_summaries(at(10, 8, 5)) == 1
    assert len(mail.outbox) == 1


def test_the_e_mail_is_written_in_the_person_s_language(
    synced_practice, manager_who_asked, monkeypatch
):
    manager_who_asked.language = "fi"
    manager_who_asked.save()
    seen = []
    real = weekly._practice_week

    def spy(*args):
        seen.append(translation.get_language())
        return real(*args)

    monkeypatch.setattr(weekly, "_practice_week", spy)
    send_weekly_summaries(at(10, 8))
    assert seen == ["fi"]
    assert translation.get_language() != "fi"
    assert mail.outbox[0].alternatives[0][0].startswith('<!doctype html>\n<html lang="fi">')
    assert "0,00\xa0€" in mail.outbox[0].body  # amounts as Finnish writes them


def test_the_schedule_calls_it_every_hour():
    (entry,) = [s for s in SCHEDULES if s.func == "reports.weekly.send_weekly_summaries"]
    assert entry.every_minutes == 60


def test_a_bad_site_url_is_refused_with_the_reason(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PAYLINKS_SITE_URL = "paylinks.example"
    with pytest.raises(ImproperlyConfigured, match="PAYLINKS_SITE_URL must be an http"):
        weekly.site_url()


# Two workers run the same hour ---------------------------------------------------------------

RACERS = 6


def race(profile: Profile, claim) -> int:
    """Each thread (its own database connection) sends the summary; answer how many e-mails."""
    start = threading.Barrier(RACERS, timeout=DEADLINE)

    def run():
        try:
            start.wait()
            send_weekly_summary(Profile.objects.get(pk=profile.pk), at(10, 8), claim=claim)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer never finished"
    return len(mail.outbox)


@pytest.mark.django_db(transaction=True)
def test_racing_workers_send_one_e_mail(practice, manager):
    profile = asks(manager)
    meeting = threading.Barrier(RACERS, timeout=DEADLINE)

    def claim_together(profile: Profile, monday: dt.date) -> bool:
        if connection.vendor != "sqlite":  # SQLite's writers wait for each other before this
            meeting.wait()  # everyone is inside the sending transaction, about to claim
        return claim_week(profile, monday)

    assert race(profile, claim_together) == 1
    assert Profile.objects.get(pk=profile.pk).weekly_summary_sent_for == MONDAY


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite writers never overlap")
@pytest.mark.django_db(transaction=True)
def test_control_a_week_read_then_written_sends_one_e_mail_per_racer(practice, manager):
    profile = asks(manager)
    meeting = threading.Barrier(RACERS, timeout=DEADLINE)

    def read_then_write(profile: Profile, monday: dt.date) -> bool:
        fresh = Profile.objects.get(pk=profile.pk)
        if fresh.weekly_summary_sent_for is not None and fresh.weekly_summary_sent_for >= monday:
            return False
        meeting.wait()  # everyone has read "not sent yet"
        fresh.weekly_summary_sent_for = monday
        fresh.save(update_fields=["weekly_summary_sent_for"])
        return True

    assert race(profile, read_then_write) == RACERS

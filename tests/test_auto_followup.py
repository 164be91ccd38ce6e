"""Automatic follow-up: expired invoice links sent again by PayLinks, on a simulated clock.

The follow-up pass is given its `now`; the sandbox's clock is moved past a link's expiry so
Provet itself says the link expired, as the poller would see it.
"""

import datetime as dt

import pytest
from django.utils import timezone

from clinics.models import Practice
from paylinks import create, tasks
from paylinks.create import AlreadyReplaced, LinkNotCreated, create_link
from paylinks.followups import follow_up_practice
from paylinks.models import DeliveryMethod, DeliveryStatus, LinkEvent, PaymentLink, PaymentStatus
from paylinks.refresh import read_status
from paylinks.send_again import send_again_automatically
from sandbox import clock
from sandbox.models import Client as ProvetClient
from sandbox.models import Invoice as ProvetInvoice
from sandbox.models import PosTransaction
from tests.conftest import draft_for
from tests.racing import Race
from tests.test_races import needs_row_locks

ALL_WEEK = [1, 2, 3, 4, 5, 6, 7]


@pytest.fixture
def following_up(invoice) -> Practice:
    """The practice with automatic follow-up on: an hour after expiry, 8 to 17 every day."""
    practice = invoice.practice
    practice.auto_follow_up = True
    practice.follow_up_delay_hours = 1
    practice.follow_up_days = ALL_WEEK
    practice.follow_up_opens_at = dt.time(8)
    practice.follow_up_closes_at = dt.time(17)
    practice.save()
    return practice


def texted_link(invoice, user) -> PaymentLink:
    return create_link(
        draft_for(invoice, user, delivery_method=DeliveryMethod.SMS, phone="+358401234567")
    )


def expire(link: PaymentLink) -> PaymentLink:
    """Move Provet's clock past the link's expiry; the poller's read records it."""
    clock.advance((link.expires_at - clock.now()).total_seconds() + 60)
    read_status(link, source=LinkEvent.Source.POLLER)
    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.EXPIRED
    return link


@pytest.fixture
def expired(following_up, invoice, receptionist) -> PaymentLink:
    return expire(texted_link(invoice, receptionist))


def local(link: PaymentLink, at: dt.time, days_later: int = 1) -> dt.datetime:
    """A moment in the practice's time zone, on a day after the link expired (and after the
    delay): `at` o'clock `days_later` days after its expiry day."""
    zone = link.practice.zone
    day = link.expires_at.astimezone(zone).date() + dt.timedelta(days=days_later)
    return dt.datetime.combine(day, at, tzinfo=zone)


def sent_again(link: PaymentLink) -> list[PaymentLink]:
    return list(PaymentLink.objects.filter(replaces=link))


def posted_in_provet(link: PaymentLink) -> int:
    """Postransactions Provet holds for the link's invoice."""
    return PosTransaction.objects.filter(invoice_id=link.invoice.provet_id).count()


def test_an_expired_link_is_sent_again_once_inside_opening_hours(expired):
    report = follow_up_practice(expired.practice, now=local(expired, dt.time(10)))

    [new] = sent_again(expired)
    assert report.sent == [new]
    assert new.sent_automatically
    assert new.state == PaymentLink.State.ACTIVE
    assert new.created_by == expired.created_by  # her link, sent again for her
    assert (new.amount, new.delivery_method, new.phone) == (
        expired.invoice.due_sum,
        DeliveryMethod.SMS,
        "+358401234567",
    )
    # Provet made it and texts it to the client.
    provet_link = PosTransaction.objects.get(pk=new.postransaction_id)
    assert (provet_link.delivery_method, provet_link.phone) == (3, "+358401234567")
    # On the old link's timeline: sent again, by PayLinks, not by a person.
    reissued = expired.events.get(kind=LinkEvent.Kind.REISSUED)
    assert (reissued.source, reissued.user) == (LinkEvent.Source.SYSTEM, None)
    assert new.events.get(kind=LinkEvent.Kind.CREATED).source == LinkEvent.Source.SYSTEM

    # A second pass later that day finds it sent.
    later = follow_up_practice(expired.practice, now=local(expired, dt.time(11)))
    assert later.sent == []
    assert len(sent_again(expired)) == 1


def test_nothing_is_sent_outside_opening_hours(expired):
    before = posted_in_provet(expired)
    for moment in (dt.time(7, 59), dt.time(17), dt.time(22, 30)):
        assert follow_up_practice(expired.practice, now=local(expired, moment)).sent == []
    assert sent_again(expired) == []
    assert posted_in_provet(expired) == before


def test_nothing_is_sent_to_an_address_that_could_not_be_reached(expired):
    PaymentLink.objects.filter(pk=expired.pk).update(delivery_status=DeliveryStatus.FAILED)
    follow_up_practice(expired.practice, now=local(expired, dt.time(10)))
    assert sent_again(expired) == []


def test_nothing_is_sent_on_a_day_the_practice_is_closed(expired):
    closed_day = local(expired, dt.time(10)).isoweekday()
    expired.practice.follow_up_days = [d for d in ALL_WEEK if d != closed_day]
    expired.practice.save()

    assert follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent == []
    # The next day it is open, it goes.
    assert len(follow_up_practice(expired.practice, now=local(expired, dt.time(10), 2)).sent) == 1


def test_nothing_is_sent_before_the_delay_has_passed(expired):
    expired.practice.follow_up_delay_hours = 48
    expired.practice.save()

    assert follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent == []
    assert len(follow_up_practice(expired.practice, now=local(expired, dt.time(10), 3)).sent) == 1


def test_nothing_is_sent_when_the_invoice_was_paid_another_way(expired):
    # Paid at the clinic's terminal: only Provet knows; PayLinks' snapshot still says due.
    ProvetInvoice.objects.filter(pk=expired.invoice.provet_id).update(
        due_sum=0, date_paid=timezone.now().date()
    )
    before = posted_in_provet(expired)

    report = follow_up_practice(expired.practice, now=local(expired, dt.time(10)))

    assert (report.sent, report.skipped) == ([], 1)
    assert sent_again(expired) == []
    assert posted_in_provet(expired) == before
    expired.invoice.refresh_from_db()
    assert expired.invoice.due_sum == 0  # read right before sending


def test_nothing_is_sent_when_someone_already_sent_it_again(expired, receptionist):
    from paylinks.forms import new_form_token
    from paylinks.send_again import send_again

    by_hand = send_again(expired, user=receptionist, idempotency_key=new_form_token())

    assert follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent == []
    assert sent_again(expired) == [by_hand]
    assert not by_hand.sent_automatically


def test_no_more_than_the_practice_s_number_of_sends_per_invoice(expired):
    [first] = follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent
    first = expire(first)

    assert follow_up_practice(first.practice, now=local(first, dt.time(10))).sent == []
    assert sent_again(first) == []

    # With two allowed, the second expiry is followed up too, and no third.
    first.practice.follow_up_max_sends = 2
    first.practice.save()
    [second] = follow_up_practice(first.practice, now=local(first, dt.time(10))).sent
    second = expire(second)
    assert follow_up_practice(second.practice, now=local(second, dt.time(10))).sent == []
    assert PaymentLink.objects.filter(invoice=expired.invoice, sent_automatically=True).count() == 2


def test_nothing_is_sent_when_the_client_no_longer_wants_sms(expired):
    # Changed in Provet after the link was made; the snapshot doesn't know it yet.
    ProvetClient.objects.filter(pk=expired.invoice.client_provet_id).update(no_sms=True)

    report = follow_up_practice(expired.practice, now=local(expired, dt.time(10)))

    assert (report.sent, report.skipped) == ([], 1)
    assert sent_again(expired) == []
    expired.invoice.refresh_from_db()
    assert expired.invoice.client_no_sms


def test_a_link_sent_by_sms_and_email_goes_by_email_alone_when_sms_is_refused(
    following_up, invoice, receptionist
):
    link = expire(
        create_link(
            draft_for(
                invoice,
                receptionist,
                delivery_method=DeliveryMethod.SMS_AND_EMAIL,
                phone="+358401234567",
                email="client@example.com",
            )
        )
    )
    ProvetClient.objects.filter(pk=invoice.client_provet_id).update(no_sms=True)

    [new] = follow_up_practice(link.practice, now=local(link, dt.time(10))).sent

    assert (new.delivery_method, new.phone, new.email) == (
        DeliveryMethod.EMAIL,
        "",
        "client@example.com",
    )


def test_nothing_is_sent_when_the_practice_has_it_off(expired):
    expired.practice.auto_follow_up = False
    expired.practice.save()

    assert follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent == []
    assert tasks.follow_up_everywhere() == 0
    assert sent_again(expired) == []


def test_links_that_expired_before_it_was_turned_on_are_left_to_the_desk(expired):
    # Turned on a minute after the link expired (on the simulated clock).
    turned_on = expired.expires_at + dt.timedelta(minutes=1)
    Practice.objects.filter(pk=expired.practice_id).update(follow_up_since=turned_on)

    assert follow_up_practice(expired.practice, now=local(expired, dt.time(10))).sent == []
    assert sent_again(expired) == []


def test_a_link_sent_nowhere_is_not_sent_again(following_up, invoice, receptionist):
    link = expire(create_link(draft_for(invoice, receptionist)))  # handed over at the desk

    assert follow_up_practice(link.practice, now=local(link, dt.time(10))).sent == []


def test_the_scheduled_task_sends_through_a_pass_per_open_practice(expired, app_clock):
    app_clock(local(expired, dt.time(10)))

    assert tasks.follow_up_everywhere() == 1  # run at once in tests

    [new] = sent_again(expired)
    assert new.sent_automatically


# Two workers following up at once (tests/racing.py, as tests/test_races.py does).


@pytest.fixture
def rendezvous(monkeypatch):
    """Hold every worker that has counted the invoice's automatic sends at a meeting point
    before it writes its reservation (tests/racing.py; the door is `_reserve`, whose
    transaction takes the locks)."""

    def arm(parties: int, *, guarded: bool = True) -> Race:
        race = Race(parties, guarded=guarded)
        count = create.automatic_sends

        def count_then_meet(invoice):
            counted = count(invoice)
            race.meet()
            return counted

        monkeypatch.setattr(create, "automatic_sends", count_then_meet)
        monkeypatch.setattr(create, "_reserve", race.door(create._reserve))
        return race

    return arm


@pytest.fixture
def without_the_locks(monkeypatch):
    """The control: read the rows the reservation checks without locking them."""
    unlocked = lambda row: type(row).objects.get(pk=row.pk)  # noqa: E731
    monkeypatch.setattr(create, "_lock_invoice", unlocked)
    monkeypatch.setattr(create, "_lock_link", unlocked)


def two_expired_links(invoice, user) -> list[PaymentLink]:
    """Two links for the whole invoice, one after the other, both expired unpaid."""
    first = expire(texted_link(invoice, user))
    return [first, expire(texted_link(invoice, user))]


def follow_up_at_once(race: Race, links: list[PaymentLink]) -> list:
    """Each link followed up by its own worker, released together."""

    def worker(link):
        def run():
            try:
                return send_again_automatically(PaymentLink.objects.get(pk=link.pk))
            except (LinkNotCreated, AlreadyReplaced) as refused:
                return refused

        return run

    return race.run([worker(link) for link in links])


def test_two_workers_following_up_one_invoice_send_one_link(
    transactional_db, following_up, invoice, receptionist, rendezvous
):
    links = two_expired_links(invoice, receptionist)
    before = posted_in_provet(links[0])
    race = rendezvous(2)

    answers = follow_up_at_once(race, links)

    race.assert_others_queued()
    assert sorted(type(answer).__name__ for answer in answers) == ["LinkNotCreated", "PaymentLink"]
    [new] = PaymentLink.objects.filter(sent_automatically=True)
    assert new.amount == invoice.due_sum
    assert posted_in_provet(links[0]) == before + 1


def test_two_workers_following_up_the_same_link_send_it_once(
    transactional_db, following_up, invoice, receptionist, rendezvous
):
    link = expire(texted_link(invoice, receptionist))
    before = posted_in_provet(link)
    race = rendezvous(2)

    answers = follow_up_at_once(race, [link, link])

    race.assert_others_queued()
    [new] = PaymentLink.objects.filter(replaces=link)
    assert isinstance(answers[0], PaymentLink) or isinstance(answers[1], PaymentLink)
    assert posted_in_provet(link) == before + 1
    assert new.sent_automatically


@needs_row_locks
def test_without_the_lock_two_workers_would_send_the_invoice_twice(
    transactional_db, following_up, invoice, receptionist, rendezvous, without_the_locks
):
    links = two_expired_links(invoice, receptionist)
    before = posted_in_provet(links[0])
    race = rendezvous(2, guarded=False)

    answers = follow_up_at_once(race, links)

    assert race.most_met == 2
    assert [type(answer).__name__ for answer in answers] == ["PaymentLink", "PaymentLink"]
    assert PaymentLink.objects.filter(sent_automatically=True).count() == 2
    assert posted_in_provet(links[0]) == before + 2  # twice the due sum asked of the client

"""The demo's payment links: five weeks a manager can read, that Provet agrees with, seeded once."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from clinics.models import Membership, Practice
from demo.history import seed_link_history
from demo.management.commands import demo_setup
from paylinks.drift import find_drift
from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink, PaymentStatus
from paylinks.polling import poll_due_links


@pytest.fixture
def staff(synced_practice):
    """A receptionist and a manager; their passwords aren't needed (and hashing them is slow)."""
    people = []
    for username, role in [
        ("riikka", Membership.Role.RECEPTION),
        ("mikko", Membership.Role.MANAGER),
    ]:
        person = get_user_model().objects.create(username=username)
        Membership.objects.create(user=person, practice=synced_practice, role=role)
        people.append(person)
    return people


@pytest.fixture
def history(synced_practice, staff):
    return seed_link_history(synced_practice)


def provet_rows(practice: Practice):
    """The sandbox's postransactions and invoices of the practice, by id."""
    from sandbox.models import Invoice as ProvetInvoice
    from sandbox.models import PosTransaction

    where = {"installation__provet_id": practice.provet_id}
    return (
        PosTransaction.objects.filter(**where).select_related("payment").in_bulk(),
        ProvetInvoice.objects.filter(**where).in_bulk(),
    )


def test_it_seeds_nothing_more_when_the_practice_has_links(synced_practice, staff):
    history = seed_link_history(synced_practice, days=7)
    links = PaymentLink.objects.filter(practice=synced_practice)
    assert history is not None and history.links == links.count() > 40
    pts, invoices = provet_rows(synced_practice)

    assert seed_link_history(synced_practice, days=7) is None
    assert links.count() == history.links
    assert provet_rows(synced_practice) == (pts, invoices)


def test_the_history_reads_like_a_clinics(synced_practice, history, staff):
    links = list(PaymentLink.objects.filter(practice=synced_practice))
    assert history.links == len(links) > 250
    zone = ZoneInfo(synced_practice.timezone)
    days = {link.created_at.astimezone(zone).date() for link in links}
    assert timezone.localdate(timezone=zone) in days and len(days) >= 30
    share = {
        status: sum(link.payment_status == status for link in links) / len(links)
        for status in PaymentStatus
    }
    assert 0.6 <= share[PaymentStatus.ACCEPTED] <= 0.76
    assert 0.12 <= share[PaymentStatus.EXPIRED] <= 0.24
    assert any(link.payment_status == PaymentStatus.FAILED for link in links)
    assert any(link.cancelled_at for link in links)
    assert any(link.delivery_status == DeliveryStatus.FAILED for link in links)
    assert any(link.replaces_id for link in links), "some expired links were sent again"
    methods = [link.delivery_method for link in links]
    texted = sum(m in (DeliveryMethod.SMS, DeliveryMethod.SMS_AND_EMAIL) for m in methods)
    assert texted > len(links) / 2
    assert DeliveryMethod.DONT_SEND in methods and DeliveryMethod.EMAIL in methods
    assert all(Decimal("20") <= link.amount <= Decimal("400") for link in links)
    assert {link.created_by for link in links} == set(staff)
    open_links = [link for link in links if link.is_open]
    assert open_links and all(link.next_check_at for link in open_links)
    assert all(
        link.expires_at == link.created_at + dt.timedelta(hours=48, seconds=1) for link in links
    )
    paid = [link for link in links if link.payment_status == PaymentStatus.ACCEPTED]
    quick = [link for link in paid if link.paid_at - link.created_at < dt.timedelta(minutes=30)]
    assert len(quick) > len(paid) / 2, "most clients pay within minutes"
    assert any(link.paid_at - link.created_at > dt.timedelta(hours=3) for link in paid)


def test_every_link_is_as_provet_has_it(synced_practice, staff):
    seed_link_history(synced_practice, days=21)
    pts, invoices = provet_rows(synced_practice)
    now = timezone.now()
    for link in PaymentLink.objects.filter(practice=synced_practice).select_related("invoice"):
        invoice = invoices[link.invoice.provet_id]
        assert (invoice.status, invoice.due_sum, invoice.date_paid) == (
            link.invoice.status,
            link.invoice.due_sum,
            link.invoice.date_paid,
        )
        pt = pts.get(link.postransaction_id)
        if link.cancelled_at:
            assert pt is None, "a cancelled link is deleted in Provet"
            continue
        assert (pt.payment_status, pt.delivery_status) == (
            link.payment_status,
            link.delivery_status,
        )
        assert (pt.amount, str(pt.external_id), pt.expiration_time) == (
            link.amount,
            link.external_id,
            link.expires_at,
        )
        assert link.payer_url == f"http://localhost/sandbox/pay/{pt.external_id}/"
        if link.payment_status == PaymentStatus.ACCEPTED:
            assert pt.payment is not None and pt.payment.amount == link.amount
            assert invoice.due_sum == 0 and invoice.date_paid is not None
        if link.payment_status == PaymentStatus.EXPIRED:
            assert pt.expiration_time < now
        if link.is_open:
            assert invoice.due_sum == link.amount and pt.expiration_time > now


def test_the_drift_check_and_the_poller_find_nothing_to_correct(synced_practice, staff):
    seed_link_history(synced_practice, days=10)
    assert find_drift(synced_practice) == []

    open_links = PaymentLink.objects.filter(practice=synced_practice, state="active")
    count = open_links.update(next_check_at=timezone.now())
    report = poll_due_links(practice=synced_practice)
    assert (report.checked, report.changed) == (count, 0) and count > 0


def test_an_open_link_can_still_be_paid_and_the_poller_sees_it(synced_practice, staff):
    from sandbox.payer import settle

    seed_link_history(synced_practice, days=3)
    link = PaymentLink.objects.filter(practice=synced_practice, state="active").first()
    settle(link.external_id, "pay")
    PaymentLink.objects.filter(pk=link.pk).update(next_check_at=timezone.now())
    poll_due_links(practice=synced_practice)

    link.refresh_from_db()
    assert link.payment_status == PaymentStatus.ACCEPTED and link.state == "closed"


def test_a_manager_sees_the_weeks_takings_and_the_department_that_lets_most_expire(
    client, synced_practice, staff, history
):
    client.force_login(staff[1])
    board = client.get("/dashboard/").context["board"]

    assert board.period.key == "7d"
    assert board.totals.paid > 0 and board.totals.paid_amount > 0
    most, *others = sorted(board.by_department, key=lambda row: -row.figures.expired)
    assert most.label == "Northvale Tampere Clinic"
    assert all(most.figures.expired > row.figures.expired for row in others)

    followup = client.get("/links/follow-up/")
    assert followup.status_code == 200 and followup.context["page"].paginator.count > 0


def test_demo_setup_gives_each_practice_its_history_once(
    db, in_process_provet, monkeypatch, settings, capsys
):
    # Fewer links, for speed.
    monkeypatch.setattr(demo_setup, "LINKS_PER_DAY", {4: 2, 7: 2})
    call_command("demo_setup", base_url="http://localhost")
    practices = Practice.objects.order_by("provet_id")
    assert [p.links.count() > 30 for p in practices] == [True, True]
    counts = [p.links.count() for p in practices]

    call_command("demo_setup", base_url="http://localhost")
    assert [p.links.count() for p in practices] == counts
    assert capsys.readouterr().out.count("has payment links already, none added") == 2

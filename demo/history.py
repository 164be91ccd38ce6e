"""Five weeks of payment links for the demo practices, so the demo looks lived in.

`manage.py demo_setup` connects the sandbox's installations as practices; on a fresh database
they have no links, and the dashboard, the links list and the follow-up queue would show
nothing. `seed_link_history` writes the links a clinic would have made with PayLinks over the
last weeks, on both sides, as if each had gone through create, poll and webhook:

- in Provet (the sandbox): a finalized invoice for a seeded client, the postransaction with its
  final statuses, the SMS and emails in the outbox, and for a paid link the payment, with the
  invoice's due sum brought to zero; a link cancelled by staff is deleted there;
- here: the invoice snapshot, the link and its events (created, delivered, paid or expired,
  cancelled, sent again), backdated to when they happened.

Both sides agree, so the poller, the reconciler and the nightly drift check find nothing to
correct, and the links still open are real ones a client can pay on the sandbox's payer page.

What the history looks like. It is made up from fixed random streams, one per day, counted back
from today in the practice's time zone: the same seed on the same day gives the same history,
whatever the hour, but for what hasn't happened yet.

- Reception makes most links, in opening hours on weekdays, fewer on Saturdays, a few on
  Sundays; an out-of-hours department makes its links in the evening and at night. Today always
  has a few.
- Most go by SMS and email, some by email or SMS only, some are handed over at the desk as a QR
  code (those are paid there and then). A client's disconnected number makes an SMS fail now
  and then.
- About seven in ten are paid, most within minutes, some hours later; about one in five is left
  to expire; a few are declined or abandoned by the client or cancelled by staff. The newest
  links are still waiting for their clients.
- Tampere lets far more links expire than the other Northvale clinics, and Riverside's out-of-
  hours service more than its hospital, so "which department lets the most expire?" has a clear
  answer in any week (`_left_to_expire` and `_department` keep a week close to the averages).
- Some expired or declined links are sent again from the follow-up queue, and most of those are
  then paid; the rest wait in the queue.
"""

import datetime as dt
import math
import random
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from clinics.models import Department, Membership, Practice
from paylinks.cadence import next_check_at
from paylinks.models import (
    DeliveryMethod,
    DeliveryStatus,
    Invoice,
    InvoiceStatus,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
    announced,
)

DEMO_SEED = 2025
# Provet numbers the demo's invoices from here, above the sandbox's seeded ones (10001...).
FIRST_INVOICE_NUMBER = 50001
CENT = Decimal("0.01")
PSP_ALPHABET = string.ascii_uppercase + string.digits

Kind = LinkEvent.Kind
Source = LinkEvent.Source


@dataclass(frozen=True)
class Habit:
    """How a department uses links: its share of the practice's links, the chance that a sent
    link is left to expire, and the chance that an expired one is sent again."""

    share: float
    expiry: float
    resend: float
    night: bool = False  # an out-of-hours service: its links come in the evening and at night


HABITS = {
    "Northvale Helsinki Small Animal Clinic": Habit(share=0.38, expiry=0.07, resend=0.3),
    "Northvale Espoo Clinic": Habit(share=0.30, expiry=0.08, resend=0.3),
    "Northvale Tampere Clinic": Habit(share=0.32, expiry=0.50, resend=0.2),
    "Riverside Hospital": Habit(share=0.75, expiry=0.07, resend=0.3),
    "Riverside Out of Hours": Habit(share=0.25, expiry=0.65, resend=0.3, night=True),
}
USUAL = Habit(share=0.3, expiry=0.14, resend=0.4)

# Links a day by weekday (Monday first), as a share of a weekday's.
WEEKDAY_VOLUME = (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.15)
# When in the day links are made: {hour: weight}.
WEEKDAY_HOURS = {8: 1, 9: 2, 10: 3, 11: 3, 12: 2, 13: 2, 14: 3, 15: 3, 16: 3, 17: 2, 18: 1}
SATURDAY_HOURS = {9: 2, 10: 3, 11: 3, 12: 2, 13: 1}
SUNDAY_HOURS = {10: 1, 11: 1, 12: 1}
NIGHT_HOURS = {19: 3, 20: 3, 21: 2, 22: 2, 23: 1, 0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 2}
# Which way reception sends a link, before the client's own choices narrow it down.
CHANNELS = (
    (DeliveryMethod.SMS_AND_EMAIL, 0.50),
    (DeliveryMethod.SMS, 0.20),
    (DeliveryMethod.EMAIL, 0.16),
    (DeliveryMethod.DONT_SEND, 0.14),
)
# An SMS is read at once, an email only is forgotten more often; a QR code at the desk is
# scanned there and then, as a rule.
EXPIRY_BY_CHANNEL = {
    DeliveryMethod.DONT_SEND: 0.3,
    DeliveryMethod.SMS_AND_EMAIL: 0.85,
    DeliveryMethod.SMS: 1.0,
    DeliveryMethod.EMAIL: 1.5,
}
ROLE_WEIGHTS: dict[str, float] = {
    Membership.Role.RECEPTION: 6.0,
    Membership.Role.MANAGER: 1.5,
    Membership.Role.ADMIN: 1.0,
}
# (chance, lowest, highest) amount, in the practice's currency: what vet invoices come to.
AMOUNTS = ((0.30, 20, 60), (0.40, 60, 140), (0.20, 140, 260), (0.10, 260, 400))
MIN_TODAY = 3  # a history always has a few links of today, whatever the hour
MIN_OPEN = 3  # and a few links still waiting to be paid
UNREACHABLE_SHARE = 0.02  # of links, for the client whose number is disconnected


@dataclass
class _Invoice:
    number: int
    client: Any  # sandbox.models.Client
    department: Department
    amount: Decimal
    created: dt.datetime
    paid: dt.datetime | None = None  # when the due sum reached zero
    fetched: dt.datetime | None = None  # when PayLinks last read it (before making a link)
    provet: Any = None  # the sandbox row, once written
    snapshot: Invoice | None = None


@dataclass
class _Link:
    invoice: _Invoice
    created: dt.datetime
    user: Any
    method: int
    email: str
    phone: str
    undeliverable: bool
    outcome: int | None = None  # Provet's final payment status; None while waiting
    settled: dt.datetime | None = None  # when Provet's payment status changed
    cancelled: dt.datetime | None = None
    replaces: "_Link | None" = None
    replaced: "_Link | None" = None
    pt: Any = None  # sandbox.models.PosTransaction, once written
    link: PaymentLink | None = None

    @property
    def delivery(self) -> int:
        if self.method == DeliveryMethod.DONT_SEND:
            return DeliveryStatus.NOT_SENT
        if self.undeliverable and DeliveryMethod(self.method).needs_phone:
            return DeliveryStatus.FAILED
        return DeliveryStatus.SENT


@dataclass(frozen=True)
class History:
    """What was seeded, for demo_setup to print."""

    days: int
    links: int
    paid: int
    paid_amount: Decimal
    expired: int
    open: int
    currency: str

    def __str__(self) -> str:
        return (
            f"{self.links} payment links ({self.paid} paid, {self.paid_amount} {self.currency}; "
            f"{self.expired} expired; {self.open} open) over the last {self.days} days"
        )


def seed_link_history(
    practice: Practice,
    *,
    days: int = 35,
    per_day: float = 12,
    seed: int = DEMO_SEED,
    now: dt.datetime | None = None,
) -> History | None:
    """Write the last `days` days of links (about `per_day` on a weekday) for a demo practice,
    in the sandbox and here. Does nothing, and answers None, when the practice has links."""
    from sandbox.models import Installation  # the demo is the one place that may

    if PaymentLink.objects.filter(practice=practice).exists():
        return None
    installation = Installation.objects.get(provet_id=practice.provet_id)
    departments = list(practice.departments.filter(allow_nhp_processing=True).order_by("provet_id"))
    if not departments:
        raise ValueError(f"{practice} has no Provet Pay department: sync its departments first.")
    now = (now or timezone.now()).replace(microsecond=0)
    planner = _Planner(practice, installation, departments, now, seed)
    links = planner.plan(days, per_day)
    with transaction.atomic():
        _write_provet(practice, installation, planner.invoices, links, now)
        _write_paylinks(practice, planner.invoices, links, now)
    paid = [item for item in links if item.outcome == PaymentStatus.ACCEPTED]
    return History(
        days=days,
        links=len(links),
        paid=len(paid),
        paid_amount=sum((item.invoice.amount for item in paid), Decimal("0.00")),
        expired=sum(item.outcome == PaymentStatus.EXPIRED for item in links),
        open=sum(item.outcome is None and item.cancelled is None for item in links),
        currency=practice.currency,
    )


class _Planner:
    """Makes the history up, in memory: who made which link when, and what became of it."""

    def __init__(self, practice, installation, departments, now, seed: int) -> None:
        self.practice = practice
        self.zone = ZoneInfo(practice.timezone)
        self.now = now
        self.seed = seed
        self.rng = random.Random(seed)  # each day gets its own (plan)
        self.duration = dt.timedelta(minutes=practice.default_duration_minutes)
        self.invoices: list[_Invoice] = []
        self.next_number = max(
            FIRST_INVOICE_NUMBER,
            1
            + max(
                installation.invoices.exclude(invoice_number=None).values_list(
                    "invoice_number", flat=True
                ),
                default=0,
            ),
        )
        habits = [(d, HABITS.get(d.name, USUAL)) for d in departments]
        self.day_departments = [(d, h) for d, h in habits if not h.night] or habits
        self.night_departments = [(d, h) for d, h in habits if h.night]
        self.habits = dict(habits)
        self.expiry_tally: dict[Department, float] = {}
        self.turns: dict[Department, float] = {}
        clients = installation.clients.filter(archived=False).prefetch_related("phone_numbers")
        self.clients = sorted(clients, key=lambda c: c.pk)
        # A client whose mobile number no longer works: now and then an SMS to them fails.
        self.unreachable = [
            c for c in self.clients if any(n.undeliverable for n in c.phone_numbers.all())
        ]
        members = Membership.objects.filter(practice=practice).select_related("user")
        staff = sorted(members, key=lambda m: m.user.get_username())
        self.staff: list[Any] = [m.user for m in staff] or [None]
        self.staff_weights = [ROLE_WEIGHTS.get(m.role, 1.0) for m in staff] or [1.0]

    # When links are made.

    def plan(self, days: int, per_day: float) -> list[_Link]:
        """Day by day, each from its own random stream: a day looks the same whatever the hour
        the history is made at, up to what hasn't happened yet."""
        today = self.now.astimezone(self.zone).date()
        cutoff = self.now - dt.timedelta(minutes=1)
        links: list[_Link] = []
        for back in range(days - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            self.rng = random.Random(f"{self.seed}:{self.practice.provet_id}:{day}")
            made = [
                self._link(at, department)
                for at, department in self._day(day, per_day)
                if at < cutoff
            ]
            links += made
            links += [again for item in made if (again := self._send_again(item)) is not None]
        # Early in the day, a few links of the last hours all the same: today is never empty.
        self.rng = random.Random(f"{self.seed}:{self.practice.provet_id}:{today}:early")
        midnight = dt.datetime.combine(today, dt.time(), self.zone)
        earliest = max(midnight, self.now - dt.timedelta(hours=3))
        latest = self.now - dt.timedelta(seconds=10)
        if latest > earliest:
            for _ in range(MIN_TODAY - sum(item.created >= midnight for item in links)):
                at = (earliest + (latest - earliest) * self.rng.random()).replace(microsecond=0)
                links.append(self._link(at, self._department(self.day_departments)))
        links.sort(key=lambda item: item.created)
        self._keep_newest_waiting(links)
        return links

    def _keep_newest_waiting(self, links: list[_Link]) -> None:
        """Whatever the hour, a few of the newest links are still waiting for their clients."""
        waiting = sum(item.outcome is None and item.cancelled is None for item in links)
        for item in reversed(links):
            if waiting >= MIN_OPEN or self.now - item.created > self.duration / 2:
                return
            if item.method == DeliveryMethod.DONT_SEND or item.delivery == DeliveryStatus.FAILED:
                continue  # paid at the desk, or never reached the client
            if item.replaced is not None:
                continue
            if item.outcome is not None or item.cancelled is not None:
                item.outcome = item.settled = item.cancelled = item.invoice.paid = None
                waiting += 1

    def _day(self, day: dt.date, per_day: float) -> list[tuple[dt.datetime, Department]]:
        """When the day's links were made, and in which department, in order."""
        weekday = day.weekday()
        volume = per_day * WEEKDAY_VOLUME[weekday] * self.rng.uniform(0.8, 1.2)
        hours = WEEKDAY_HOURS if weekday < 5 else SATURDAY_HOURS if weekday == 5 else SUNDAY_HOURS
        made = [
            (self._moment(day, hours), self._department(self.day_departments))
            for _ in range(round(volume))
        ]
        for department, habit in self.night_departments:
            nights = per_day * habit.share * self.rng.uniform(0.8, 1.2)
            made += [(self._moment(day, NIGHT_HOURS), department) for _ in range(round(nights))]
        return sorted(made, key=lambda m: m[0])

    def _moment(self, day: dt.date, hours: dict[int, int]) -> dt.datetime:
        hour = self.rng.choices(list(hours), list(hours.values()))[0]
        clock = dt.time(hour, self.rng.randrange(60), self.rng.randrange(60))
        return dt.datetime.combine(day, clock, self.zone)

    def _department(self, choices: list[tuple[Department, Habit]]) -> Department:
        """The department of the next link: each gets its share of any few days' links, give or
        take one (a weighted round robin, its order shaken a little), so no week is a fluke."""
        total = sum(habit.share for _, habit in choices)
        for department, habit in choices:
            self.turns[department] = self.turns.get(department, 0.0) + habit.share / total
        chosen = max(choices, key=lambda c: self.turns[c[0]] + self.rng.uniform(0, 0.5))[0]
        self.turns[chosen] -= 1
        return chosen

    # What each link was, and what became of it.

    def _link(self, created: dt.datetime, department: Department) -> _Link:
        rng = self.rng
        if self.unreachable and rng.random() < UNREACHABLE_SHARE:
            client = rng.choice(self.unreachable)
        else:
            client = rng.choice(self.clients)
        lowest, highest = rng.choices(
            [(low, high) for _, low, high in AMOUNTS], [c for c, *_ in AMOUNTS]
        )[0]
        amount = Decimal(rng.randint(lowest * 100, highest * 100)) * CENT
        invoice = _Invoice(
            number=self.next_number,
            client=client,
            department=department,
            amount=amount,
            created=created - dt.timedelta(seconds=rng.randint(120, 1800)),
        )
        self.next_number += 1
        self.invoices.append(invoice)
        item = self._new_link(invoice, created, self._channel(client))
        self._settle(item)
        return item

    def _new_link(self, invoice: _Invoice, created: dt.datetime, method: int) -> _Link:
        client = invoice.client
        phone = "" if client.no_sms else _primary_phone(client)
        invoice.fetched = created - dt.timedelta(seconds=15)  # the form is filled in from it
        return _Link(
            invoice=invoice,
            created=created.astimezone(dt.UTC),
            user=self.rng.choices(self.staff, self.staff_weights)[0],
            method=method,
            email="" if client.no_email else client.email,
            phone=phone,
            undeliverable=any(
                n.undeliverable for n in client.phone_numbers.all() if n.phone_number == phone
            ),
        )

    def _channel(self, client) -> int:
        wanted = self.rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        can_sms = bool(_primary_phone(client)) and not client.no_sms
        can_email = bool(client.email) and not client.no_email
        method = DeliveryMethod(wanted)
        if method.needs_phone and not can_sms:
            return DeliveryMethod.EMAIL if can_email else DeliveryMethod.DONT_SEND
        if method.needs_email and not can_email:
            return DeliveryMethod.SMS if can_sms else DeliveryMethod.DONT_SEND
        return method

    def _settle(self, item: _Link, *, again: bool = False) -> None:
        """Decide what the client (or staff) did, and when; what hasn't happened by now waits."""
        rng = self.rng
        habit = self.habits[item.invoice.department]
        minutes = dt.timedelta(minutes=1)
        roll, paid_at_desk = rng.random(), rng.random() < 0.6
        if self._left_to_expire(item, habit, again):
            outcome, after = PaymentStatus.EXPIRED, self.duration
        elif item.method == DeliveryMethod.DONT_SEND:
            # Scanned at the desk and paid there and then, as a rule.
            if roll < 0.95:
                outcome, after = PaymentStatus.ACCEPTED, rng.uniform(0.7, 6) * minutes
            else:
                outcome, after = PaymentStatus.FAILED, rng.uniform(1, 5) * minutes
        elif item.delivery == DeliveryStatus.FAILED and item.method == DeliveryMethod.SMS:
            # The client never got it: someone noticed and cancelled it.
            outcome, after = None, rng.uniform(20, 240) * minutes
        elif again or roll >= 0.11:  # a second reminder is paid, or forgotten
            outcome, after = PaymentStatus.ACCEPTED, self._time_to_pay()
        elif roll < 0.05:
            outcome, after = PaymentStatus.FAILED, rng.uniform(1, 40) * minutes
        elif roll < 0.075:
            outcome, after = PaymentStatus.ABORTED, rng.uniform(1, 60) * minutes
        else:
            outcome, after = None, rng.uniform(15, 300) * minutes  # cancelled by staff
        # Provet's created time: a moment after ours (the POST), so expiry counts from it.
        at = item.created + dt.timedelta(seconds=1) + after
        if outcome == PaymentStatus.EXPIRED:
            if at + dt.timedelta(minutes=2) <= self.now:
                item.outcome, item.settled = outcome, at
        elif at + dt.timedelta(seconds=30) <= self.now:
            if outcome is None:
                item.cancelled = at.replace(microsecond=0)
                if paid_at_desk:  # the client came in and paid at the desk instead
                    item.invoice.paid = item.cancelled
            else:
                item.outcome, item.settled = outcome, at.replace(microsecond=0)
                if outcome == PaymentStatus.ACCEPTED:
                    item.invoice.paid = item.settled

    def _left_to_expire(self, item: _Link, habit: Habit, again: bool) -> bool:
        """Whether the client lets this link expire, at the department's rate for the channel.

        Systematic rather than independent draws: each link adds its chance to the department's
        tally and every time the tally passes a whole one, that link expires. Any week then shows
        close to the department's rate, so the slipping department stands out whatever the day.
        """
        if item.delivery == DeliveryStatus.FAILED and item.method == DeliveryMethod.SMS:
            chance = 0.75  # the client never got it
        else:
            chance = habit.expiry * EXPIRY_BY_CHANNEL[DeliveryMethod(item.method)]
        if again:
            chance /= 2  # a second reminder works better
        department = item.invoice.department
        tally = self.expiry_tally.get(department, self.rng.random()) + chance
        self.expiry_tally[department] = tally % 1
        return tally >= 1

    def _time_to_pay(self) -> dt.timedelta:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            seconds = min(max(rng.lognormvariate(math.log(360), 0.7), 70), 1800)
        elif roll < 0.85:
            seconds = rng.uniform(1800, 4 * 3600)
        else:
            seconds = rng.uniform(4 * 3600, 40 * 3600)
        return dt.timedelta(seconds=round(seconds))

    def _send_again(self, item: _Link) -> "_Link | None":
        """From the follow-up queue: a new link for an expired or declined one, if someone did."""
        if item.replaces is not None or item.invoice.paid is not None or item.settled is None:
            return None
        if item.outcome not in (PaymentStatus.EXPIRED, PaymentStatus.FAILED):
            return None
        if self.rng.random() >= self.habits[item.invoice.department].resend:
            return None
        if item.outcome == PaymentStatus.FAILED:
            when = item.settled + self.rng.uniform(3, 40) * dt.timedelta(minutes=1)
        else:
            when = self._working_time(
                item.settled + self.rng.uniform(0.25, 3) * dt.timedelta(hours=1)
            )
        if when > self.now - dt.timedelta(minutes=1):
            return None
        method = item.method
        if item.delivery == DeliveryStatus.FAILED:
            method = DeliveryMethod.EMAIL if item.email else DeliveryMethod.DONT_SEND
        again = self._new_link(item.invoice, when.replace(microsecond=0), method)
        again.replaces, item.replaced = item, again
        self._settle(again, again=True)
        return again

    def _working_time(self, moment: dt.datetime) -> dt.datetime:
        """The moment, or the next morning when it falls outside opening hours."""
        local = moment.astimezone(self.zone)
        if 8 <= local.hour < 18:
            return moment
        day = local.date() + dt.timedelta(days=1 if local.hour >= 18 else 0)
        start = dt.datetime.combine(day, dt.time(8, 30), self.zone)
        return start + self.rng.uniform(0, 150) * dt.timedelta(minutes=1)


def _primary_phone(client) -> str:
    """The number Provet would text: the one marked for reminders, else the first."""
    numbers = sorted(client.phone_numbers.all(), key=lambda n: n.pk)
    preferred = [n for n in numbers if n.preferred_reminders] or numbers
    return preferred[0].phone_number if preferred else ""


def _client_name(client) -> str:
    return client.organization_name or f"{client.firstname} {client.lastname}".strip()


def _payer_url(practice: Practice) -> Callable[[uuid.UUID], str]:
    """The payer page's address as the sandbox gives it, on the host the practice reaches it at."""
    root = urlsplit(practice.root_url)
    return lambda external_id: (
        f"{root.scheme}://{root.netloc}" + reverse("sandbox:pay", args=[external_id])
    )


def _write_provet(practice, installation, invoices: list[_Invoice], links: list[_Link], now):
    """Provet's side: invoices, postransactions, payments and the outbox, as they stand now."""
    from sandbox import outbox
    from sandbox.models import Department as ProvetDepartment
    from sandbox.models import Invoice as ProvetInvoice
    from sandbox.models import Payment, PosTransaction
    from sandbox.seed import PLANS
    from sandbox.validation import PROVET_PAY

    departments = ProvetDepartment.objects.in_bulk(
        [invoice.department.provet_id for invoice in invoices]
    )
    # The VAT and invoice prefix the sandbox's own invoices for this installation have.
    plan = next((plan for plan in PLANS if plan.provet_id == installation.provet_id), None)
    vat, prefix = (plan.vat, plan.invoice_prefix) if plan else (Decimal("0"), "")
    zone = ZoneInfo(installation.timezone)
    rows = []
    for invoice in invoices:
        gross = invoice.amount
        net = (gross / (1 + vat)).quantize(CENT)
        local_day = invoice.created.astimezone(zone).date()
        invoice.provet = ProvetInvoice(
            installation=installation,
            invoice_number=invoice.number,
            invoice_prefix=prefix,
            status=InvoiceStatus.FINALIZED,
            invoice_date=local_day,
            invoice_due_date=local_day + dt.timedelta(days=14),
            date_paid=invoice.paid.astimezone(zone).date() if invoice.paid else None,
            client=invoice.client,
            department=departments[invoice.department.provet_id],
            total=net,
            total_vat=gross - net,
            total_with_vat=gross,
            due_sum=Decimal("0.00") if invoice.paid else gross,
            created=invoice.created,
            modified=invoice.paid or invoice.created,
        )
        rows.append(invoice.provet)
    ProvetInvoice.objects.bulk_create(rows)

    paid = [item for item in links if item.outcome == PaymentStatus.ACCEPTED]
    payments = Payment.objects.bulk_create(
        Payment(
            installation=installation,
            invoice=item.invoice.provet,
            client=item.invoice.client,
            amount=item.invoice.amount,
            psp_reference="".join(secrets.choice(PSP_ALPHABET) for _ in range(16)),
            created=item.settled,
        )
        for item in paid
    )
    payment_of = {id(item): payment for item, payment in zip(paid, payments, strict=True)}

    creator = installation.integration_user
    for item in links:
        created = item.created + dt.timedelta(seconds=1)
        delivered = created + dt.timedelta(seconds=3)
        item.pt = PosTransaction(
            installation=installation,
            amount=item.invoice.amount,
            invoice=item.invoice.provet,
            department=departments[item.invoice.department.provet_id],
            creator=creator,
            terminal_id=PROVET_PAY["terminal_id"],
            payment_type=PROVET_PAY["payment_type"],
            transaction_type=PROVET_PAY["transaction_type"],
            payment=payment_of.get(id(item)),
            aborted=item.settled if item.outcome == PaymentStatus.ABORTED else None,
            created=created,
            modified=item.settled
            or (delivered if item.delivery != DeliveryStatus.NOT_SENT else created),
            external_id=uuid.uuid4(),
            expiration_time=created + dt.timedelta(minutes=practice.default_duration_minutes),
            payment_status=item.outcome or PaymentStatus.PENDING,
            delivery_status=item.delivery,
            delivery_method=item.method,
            email=item.email,
            phone=item.phone,
            description=_description(practice, item),
            return_url=practice.default_return_url,
        )
    PosTransaction.objects.bulk_create([item.pt for item in links])
    payer_url = _payer_url(practice)
    for item in links:
        outbox.queue(
            item.pt, payer_url(item.pt.external_id), item.pt.created + dt.timedelta(seconds=3)
        )
    outbox.deliver_due(installation, now)
    # Cancelling a link deletes its postransaction in Provet; the messages sent stay.
    PosTransaction.objects.filter(pk__in=[item.pt.pk for item in links if item.cancelled]).delete()


def _write_paylinks(practice: Practice, invoices: list[_Invoice], links: list[_Link], now):
    """Our side: invoice snapshots, links and their events, backdated."""
    snapshots = []
    for invoice in invoices:
        provet = invoice.provet
        # Read again after a payment (the webhook), else when the last link was made.
        fetched = invoice.paid + dt.timedelta(seconds=5) if invoice.paid else invoice.fetched
        invoice.snapshot = snapshot = Invoice(
            practice=practice,
            provet_id=provet.pk,
            number=f"{provet.invoice_prefix}{provet.invoice_number}",
            status=provet.status,
            client_provet_id=invoice.client.pk,
            client_name=_client_name(invoice.client),
            client_email=invoice.client.email,
            client_phone=_primary_phone(invoice.client),
            client_no_sms=invoice.client.no_sms,
            client_no_email=invoice.client.no_email,
            department=invoice.department,
            total_with_vat=provet.total_with_vat,
            due_sum=provet.due_sum,
            invoice_date=provet.invoice_date,
            date_paid=provet.date_paid,
            fetched_at=fetched or now,
        )
        snapshots.append(snapshot)
    Invoice.objects.bulk_create(snapshots)

    payer_url = _payer_url(practice)
    rows: list[PaymentLink] = []
    # A link sent again points at the one it replaces, which must be written first.
    for replacements in (False, True):
        batch = []
        for item in links:
            if (item.replaces is not None) == replacements:
                item.link = _link_row(practice, item, payer_url, now)
                batch.append(item.link)
        rows += PaymentLink.objects.bulk_create(batch)
    events: list[tuple[LinkEvent, dt.datetime]] = []
    for item in links:
        events += _events(practice, item)
    LinkEvent.objects.bulk_create([event for event, _ in events])
    # auto_now_add wrote "now" on insert; the past is written afterwards.
    for event, at in events:
        event.created_at = at
    LinkEvent.objects.bulk_update([event for event, _ in events], ["created_at"], batch_size=500)
    for item in links:
        assert item.link is not None
        item.link.created_at = item.created
    PaymentLink.objects.bulk_update(rows, ["created_at"], batch_size=500)


def _link_row(practice: Practice, item: _Link, payer_url, now) -> PaymentLink:
    pt = item.pt
    final = item.outcome is not None or item.cancelled is not None
    link = PaymentLink(
        practice=practice,
        invoice=item.invoice.snapshot,
        department=item.invoice.department,
        client_name=_client_name(item.invoice.client),
        amount=item.invoice.amount,
        currency=practice.currency,
        delivery_method=item.method,
        email=item.email,
        phone=item.phone,
        description=pt.description,
        duration_minutes=practice.default_duration_minutes,
        return_url=practice.default_return_url,
        created_by=item.user,
        created_at=item.created,
        replaces=item.replaces.link if item.replaces else None,
        postransaction_id=pt.pk,
        postransaction_url=f"{practice.root_url}api/0.1/postransaction/{pt.pk}/",
        external_id=str(pt.external_id),
        payer_url=payer_url(pt.external_id),
        expires_at=pt.expiration_time,
        payment_status=item.outcome or PaymentStatus.PENDING,
        delivery_status=item.delivery,
        state=PaymentLink.State.CLOSED if final else PaymentLink.State.ACTIVE,
        idempotency_key=f"demo:{practice.pk}:{pt.pk}",
        checked_at=_last_look(item),
        paid_at=_heard(item) if item.outcome == PaymentStatus.ACCEPTED else None,
        cancelled_at=item.cancelled,
    )
    link.next_check_at = next_check_at(link, now)
    return link


def _heard(item: _Link) -> dt.datetime:
    """When PayLinks learned the payment status: the webhook for a payment, the poller else."""
    assert item.settled is not None
    if item.outcome == PaymentStatus.ACCEPTED:
        return item.settled + dt.timedelta(seconds=2)
    if item.outcome == PaymentStatus.EXPIRED:
        return item.settled + dt.timedelta(seconds=35)  # the poller's last look
    return item.settled + dt.timedelta(seconds=20)


def _delivery_seen(item: _Link) -> dt.datetime:
    return item.created + dt.timedelta(seconds=31)  # the poller's first look at a young link


def _last_look(item: _Link) -> dt.datetime | None:
    if item.settled is not None:
        return _heard(item)
    if item.method != DeliveryMethod.DONT_SEND:
        return _delivery_seen(item)
    return None


def _events(practice: Practice, item: _Link) -> list[tuple[LinkEvent, dt.datetime]]:
    link = item.link
    assert link is not None  # written before its events

    def event(kind, source, at, old="", new="", user=None, message="") -> tuple[LinkEvent, Any]:
        row = LinkEvent(
            link=link,
            kind=kind,
            source=source,
            # Each kind happens once to a demo link, and the link is written as it ends.
            announces=announced(kind, link),
            user=user,
            old_value=old,
            new_value=new,
            message=message,
        )
        return row, at

    method = DeliveryMethod(item.method)
    made = [
        event(
            Kind.CREATED,
            Source.USER,
            item.created + dt.timedelta(seconds=1),
            _label(PaymentLink.State.CREATING),
            _label(PaymentLink.State.ACTIVE),
            user=item.user,
            message=f"{item.invoice.amount} {practice.currency}, {method.label}",
        )
    ]
    if item.method != DeliveryMethod.DONT_SEND:
        made.append(
            event(
                Kind.DELIVERY_CHANGED,
                Source.POLLER,
                _delivery_seen(item),
                _label(DeliveryStatus.NOT_SENT),
                _label(DeliveryStatus(item.delivery)),
            )
        )
    if item.outcome is not None:
        source = Source.WEBHOOK if item.outcome == PaymentStatus.ACCEPTED else Source.POLLER
        made.append(
            event(
                Kind.PAYMENT_CHANGED,
                source,
                _heard(item),
                _label(PaymentStatus.PENDING),
                _label(PaymentStatus(item.outcome)),
            )
        )
    if item.cancelled is not None:
        made.append(
            event(
                Kind.CANCELLED,
                Source.USER,
                item.cancelled,
                _label(PaymentLink.State.ACTIVE),
                "Cancelled",
                user=item.user,
                message="Cancelled by staff",
            )
        )
    if item.replaced is not None:
        again = item.replaced
        made.append(
            event(
                Kind.REISSUED,
                Source.USER,
                again.created,
                user=again.user,
                message=f"Replaced by a new link for {again.invoice.amount} {practice.currency}",
            )
        )
    return made


def _label(choice) -> str:
    return str(choice.label)


def _description(practice: Practice, item: _Link) -> str:
    provet = item.invoice.provet
    return f"Payment for invoice {provet.invoice_prefix}{provet.invoice_number} – {practice.name}"

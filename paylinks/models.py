import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinics import crypto
from clinics.models import Department, Practice
from clinics.provet.types import DeliveryStatus, InvoiceStatus, PaymentStatus, PosTransaction
from paylinks.cadence import next_check_at


def payment_rank(status: int | None) -> int:
    """Statuses only move forward: pending, then an ending, and Paid above every other ending
    (a payment that raced the expiry still counts)."""
    if status is None:
        return -1
    if status == PaymentStatus.PENDING:
        return 0
    return 2 if status == PaymentStatus.ACCEPTED else 1


def delivery_rank(status: int | None) -> int:
    if status is None:
        return -1
    return 0 if status == DeliveryStatus.NOT_SENT else 1


class DeliveryMethod(models.IntegerChoices):
    DONT_SEND = 0, _("Don't send")
    SMS_AND_EMAIL = 1, _("SMS and email")
    EMAIL = 2, _("Email only")
    SMS = 3, _("SMS only")

    @property
    def needs_email(self) -> bool:
        return self in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.EMAIL)

    @property
    def needs_phone(self) -> bool:
        return self in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.SMS)


class Tokenize(models.TextChoices):
    OFF = "", _("Off")
    ASK = "ask", _("Ask the client")
    YES = "yes", _("Save the card")


class RecurringModel(models.TextChoices):
    NONE = "", _("—")
    ONE_OFF = "one-off", _("One-off")
    SUBSCRIPTION = "subscription", _("Subscription")


# The words a LinkEvent stores for old and new values: always the English labels (the source
# strings), whoever's page made the change; the timeline translates them when it shows them.


def _state(value: str) -> str:
    with translation.override("en"):
        return str(PaymentLink.State(value).label)


def _label(choices, value: int | None) -> str:
    if value is None:
        return ""
    with translation.override("en"):
        return str(choices(value).label)


class Invoice(models.Model):
    """A snapshot of a Provet invoice, for display, search and reporting. Provet is the truth."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="invoices")
    provet_id = models.PositiveIntegerField()
    number = models.CharField(max_length=50, blank=True)
    status = models.IntegerField(choices=InvoiceStatus.choices)
    credit_note = models.BooleanField(default=False)
    client_provet_id = models.PositiveIntegerField(null=True, blank=True)
    client_name = models.CharField(max_length=200, blank=True)
    client_email = models.EmailField(blank=True)
    client_phone = models.CharField(max_length=32, blank=True)
    client_no_sms = models.BooleanField(default=False)
    client_no_email = models.BooleanField(default=False)
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    total_with_vat = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    due_sum = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    invoice_date = models.DateField(null=True, blank=True)
    date_paid = models.DateField(null=True, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["-invoice_date", "-provet_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "provet_id"], name="invoice_unique_per_practice"
            )
        ]
        indexes = [models.Index(fields=["practice", "number"], name="invoice_number_idx")]

    def __str__(self) -> str:
        return self.number or f"Draft invoice {self.provet_id}"

    @property
    def is_payable(self) -> bool:
        return not self.link_problem()

    def link_problem(self) -> str:
        """Why no link can be made for this invoice at all, or "" when one can."""
        if self.status != InvoiceStatus.FINALIZED:
            return gettext(
                "Invoice %(invoice)s is %(status)s: only a finalized invoice can be paid. "
                "Finalize it in Provet first."
            ) % {"invoice": self, "status": self.get_status_display().lower()}
        if self.credit_note:
            return gettext("Invoice %(invoice)s is a credit note: there is nothing to pay.") % {
                "invoice": self
            }
        department = self.department
        if department is None:
            return gettext(
                "Provet Pay is not allowed in its department, so no link can be made for "
                "this invoice."
            )
        if not department.allow_nhp_processing:
            return gettext(
                "Provet Pay is not allowed in %(department)s, so no link can be made for this "
                "invoice."
            ) % {"department": department.name}
        if self.due_sum <= 0:
            return gettext("Nothing is due on invoice %(invoice)s: it has been paid.") % {
                "invoice": self
            }
        return ""

    def open_links(self) -> models.QuerySet["PaymentLink"]:
        return self.links.open()

    def asked_for(self, *, excluding: "PaymentLink | None" = None) -> Decimal:
        """What the invoice's payable links ask for together, links imported from Provet too.

        A link waiting for a person to say which Provet link it is counts once per candidate:
        until then each of them can be paid."""
        links = self.open_links()
        if excluding is not None:
            links = links.exclude(pk=excluding.pk)
        rows = links.values_list("amount", "needs_review", "review_candidates")
        return sum(
            (amount * (len(candidates) if review and candidates else 1))
            for amount, review, candidates in rows
        ) or Decimal("0.00")

    def free_amount(self, *, replacing: "PaymentLink | None" = None) -> Decimal:
        """What a new link may still ask for: the due sum less what payable links ask for.

        A link being replaced doesn't count: it is cancelled in Provet before its replacement
        is posted. The guarantee is `paylinks.create._reserve`, which calls this with the
        invoice row locked; anywhere else it is only a hint for the form.
        """
        return max(self.due_sum - self.asked_for(excluding=replacing), Decimal("0"))


class Prepayment(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="prepayments")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    client_provet_id = models.PositiveIntegerField()
    client_name = models.CharField(max_length=200)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Prepayment for {self.client_name}"


# A link that ended unpaid this recently is read once more when its invoice's due sum drops.
LATE_PAYMENT_WINDOW = dt.timedelta(days=2)


class PaymentLinkQuerySet(models.QuerySet["PaymentLink"]):
    def live(self) -> "PaymentLinkQuerySet":
        """Every link but attempts Provet never made: what counts as a replacement."""
        return self.exclude(state=PaymentLink.State.FAILED)

    def automatic_sends(self) -> "PaymentLinkQuerySet":
        """Links the automatic follow-up made, attempts Provet never made aside: what counts
        against the practice's `follow_up_max_sends` per invoice."""
        return self.live().filter(sent_automatically=True)

    def recently_closed(self, now: dt.datetime) -> "PaymentLinkQuerySet":
        """Links that ended unpaid lately (expired, failed, aborted; not cancelled by us): a
        payment that raced the ending may still show up on them. An ended link is not checked
        again, so its last check is when it was seen to end."""
        return self.filter(
            state=PaymentLink.State.CLOSED,
            cancelled_at__isnull=True,
            payment_status__in=PaymentStatus.final() - {PaymentStatus.ACCEPTED},
            checked_at__gte=now - LATE_PAYMENT_WINDOW,
            postransaction_id__isnull=False,
        )

    def open(self) -> "PaymentLinkQuerySet":
        """Payable links (PaymentLink.open_q)."""
        return self.filter(PaymentLink.open_q())

    def counted_as(self, figure: str) -> "PaymentLinkQuerySet":
        """The links a dashboard figure counts (LINK_FIGURES), as the links list filters them."""
        return self.filter(LINK_FIGURES[figure])

    def with_replaced(self) -> "PaymentLinkQuerySet":
        return self.annotate(replaced=self._replaced())

    def not_replaced(self) -> "PaymentLinkQuerySet":
        return self.exclude(self._replaced())

    @staticmethod
    def _replaced() -> models.Exists:
        """A live link was made in this one's place ("Send again", "Replace")."""
        return models.Exists(PaymentLink.objects.filter(replaces=models.OuterRef("pk")).live())


class PaymentLink(models.Model):
    class State(models.TextChoices):
        CREATING = "creating", _("Creating")
        ACTIVE = "active", _("Active")
        UNKNOWN = "unknown", _("Outcome unknown")
        FAILED = "failed", _("Not created")
        CLOSED = "closed", _("Closed")

    # Reserved, and Provet hasn't said yet whether the link exists (or PayLinks didn't hear).
    UNDECIDED = (State.CREATING, State.UNKNOWN)

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="links")
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="links"
    )
    prepayment = models.ForeignKey(
        Prepayment, on_delete=models.PROTECT, null=True, blank=True, related_name="links"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="links")
    client_name = models.CharField(max_length=200, blank=True)

    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    delivery_method = models.IntegerField(
        choices=DeliveryMethod.choices, default=DeliveryMethod.DONT_SEND
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255, blank=True)
    duration_minutes = models.PositiveIntegerField()
    return_url = models.URLField(max_length=2000, blank=True)
    tokenize = models.CharField(max_length=3, choices=Tokenize.choices, blank=True)
    recurring_model = models.CharField(max_length=12, choices=RecurringModel.choices, blank=True)
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    consent_recorded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_links",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    replaces = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replacements"
    )

    # What Provet answered.
    postransaction_id = models.PositiveIntegerField(null=True, blank=True)
    postransaction_url = models.URLField(max_length=500, blank=True)
    external_id = models.CharField(max_length=64, blank=True)
    payer_url = models.URLField(max_length=2000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    payment_status = models.IntegerField(choices=PaymentStatus.choices, null=True, blank=True)
    delivery_status = models.IntegerField(choices=DeliveryStatus.choices, null=True, blank=True)

    # Bookkeeping.
    state = models.CharField(max_length=10, choices=State.choices, default=State.CREATING)
    idempotency_key = models.CharField(max_length=64, unique=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    needs_review = models.BooleanField(
        default=False, help_text=_("Several Provet links could be this one: a person decides.")
    )
    imported = models.BooleanField(
        default=False, help_text=_("Made outside PayLinks and found on the invoice in Provet.")
    )
    sent_automatically = models.BooleanField(
        default=False,
        help_text=_("Sent again by the practice's automatic follow-up, not by a person."),
    )
    # The postransactions that could be this link, for a person to choose among (needs review);
    # kept after the choice.
    review_candidates = models.JSONField(default=list, blank=True)

    objects = PaymentLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(invoice__isnull=False) & Q(prepayment__isnull=True))
                | (Q(invoice__isnull=True) & Q(prepayment__isnull=False)),
                name="link_for_one_invoice_or_one_prepayment",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="link_amount_positive"),
            models.UniqueConstraint(
                fields=["practice", "postransaction_id"],
                condition=Q(postransaction_id__isnull=False),
                name="link_unique_postransaction",
            ),
            # "Send again" and "Replace" make one new link per link, however often they are
            # pressed: a second live replacement can't be written (paylinks/create.py).
            models.UniqueConstraint(
                fields=["replaces"],
                condition=Q(replaces__isnull=False) & ~Q(state="failed"),
                name="link_one_live_replacement",
            ),
        ]
        indexes = [
            # Used by the poller (paylinks/polling.py) to claim links that are due.
            models.Index(
                fields=["next_check_at"],
                condition=Q(next_check_at__isnull=False),
                name="link_due_for_check_idx",
            ),
            models.Index(fields=["practice", "-created_at"], name="link_practice_created_idx"),
            models.Index(fields=["external_id"], name="link_external_id_idx"),
            # The manager dashboard (reports/figures.py): a practice's links by creation
            # time, carrying every column its figures read, so adding up a month of links
            # reads this index alone and never the table.
            models.Index(
                fields=[
                    "practice",
                    "created_at",
                    "state",
                    "payment_status",
                    "delivery_status",
                    "department",
                    "created_by",
                    "delivery_method",
                    "amount",
                    "paid_at",
                ],
                name="link_dashboard_idx",
            ),
            # The department filter of the dashboard and of the links list.
            models.Index(fields=["department", "created_at"], name="link_department_created_idx"),
            # The dashboard's money in by payment date (reports/figures.py, `money_in`): a
            # practice's paid links by payment time, carrying the columns it reads.
            models.Index(
                fields=[
                    "practice",
                    "paid_at",
                    "department",
                    "state",
                    "payment_status",
                    "sent_automatically",
                    "amount",
                ],
                condition=Q(paid_at__isnull=False),
                name="link_practice_paid_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} – {self.subject}"

    @staticmethod
    def open_q() -> Q:
        """Links that a client may still pay (or that may turn out to exist): payable links.

        From the reservation (`creating`, `unknown`) until the link is final or cancelled. An
        invoice's payable links never ask for more than its due sum (Invoice.free_amount)."""
        return Q(state__in=PaymentLink.UNDECIDED) | Q(
            state=PaymentLink.State.ACTIVE, payment_status=PaymentStatus.PENDING
        )

    @property
    def subject(self) -> str:
        if self.invoice_id:
            return f"invoice {self.invoice}"
        return "prepayment"

    @property
    def is_open(self) -> bool:
        # open_q, for one link in hand.
        return self.state in self.UNDECIDED or (
            self.state == self.State.ACTIVE and self.payment_status == PaymentStatus.PENDING
        )

    @property
    def can_cancel(self) -> bool:
        """Its postransaction can still be deleted in Provet: it is open and Provet made it."""
        return self.is_open and self.postransaction_id is not None

    @property
    def is_replaced(self) -> bool:
        """A later link was made for the same money ("send again").

        Lists annotate this as `replaced` (PaymentLinkQuerySet.with_replaced) so a page of
        links costs one query, not one per row."""
        annotated = getattr(self, "replaced", None)
        if annotated is not None:
            return annotated
        return self.replacements.live().exists()

    def live_replacement(self) -> "PaymentLink | None":
        """The link made in this one's place by "Send again" or "Replace", if any."""
        return self.replacements.live().select_related("created_by").first()

    @property
    def can_send_again(self) -> bool:
        """Offer "Send again": Provet made it, nobody paid, cancelled or replaced it."""
        return (
            self.state in (self.State.ACTIVE, self.State.CLOSED)
            and self.payment_status != PaymentStatus.ACCEPTED
            and not self.cancelled_at
            and not self.is_replaced
        )

    @property
    def is_final_for_display(self) -> bool:
        """Nothing about this link will change by itself any more: stop polling the page."""
        return self.state in (self.State.FAILED, self.State.CLOSED) or self.needs_review

    @property
    def sent_to(self) -> list[str]:
        """The addresses Provet sends this link to, by its delivery method."""
        method = DeliveryMethod(self.delivery_method)
        return [
            address
            for address, used in (
                (self.phone, method.needs_phone),
                (self.email, method.needs_email),
            )
            if used and address
        ]

    # State changes. Each locks and re-reads the row, writes its events in the same
    # transaction, and leaves `self` holding what was saved.

    def _locked(self) -> "PaymentLink":
        return PaymentLink.objects.select_for_update().get(pk=self.pk)

    def _refresh_from(self, saved: "PaymentLink") -> None:
        for field in self._meta.concrete_fields:
            setattr(self, field.attname, getattr(saved, field.attname))

    def event(
        self,
        kind: str,
        source: str,
        user=None,
        old="",
        new="",
        message: "str | Said" = "",
        *,
        reason: str = "",
        values: dict[str, Any] | None = None,
    ) -> "LinkEvent":
        """Write an event of `self` as it is now, with what it announces (`announced`): its
        outgoing event, a signed POST to the practice's endpoints that chose it, is written in
        the same transaction, or neither is; the notices read it from the event.

        `values`: codes of the event's own (a created link's delivery method), for the timeline
        to put in words; kept beside a `Said` message's values."""
        from paylinks import outbox  # it reads these models

        if isinstance(message, Said):
            text, template, said_values = message.english(), message.template, message.values
        else:
            text, template, said_values = message, "", {}
        announces = announced(kind, self)
        with transaction.atomic(savepoint=False):
            event = LinkEvent.objects.create(
                link=self,
                kind=kind,
                source=source,
                reason=reason,
                announces=announces,
                user=user,
                old_value=str(old),
                new_value=str(new),
                message=text,
                message_template=template,
                message_values=said_values | (values or {}),
            )
            if announces:
                outbox.record(self, announces)
            return event

    def adopt(
        self,
        posted: PosTransaction,
        *,
        source: str,
        kind: str = "created",
        user=None,
        message: "str | Said" = "",
        values: dict[str, Any] | None = None,
        failed_too: bool = False,
    ) -> None:
        """Take Provet's postransaction as this link's own (after a POST or a reconciliation).

        `failed_too`: the nightly second look found what the reconciler had given up on."""
        waiting = [*self.UNDECIDED, self.State.FAILED] if failed_too else self.UNDECIDED
        with transaction.atomic():
            link = self._locked()
            # Only an attempt still waiting for its answer can take one (another worker or
            # request may have settled it meanwhile).
            if link.state not in waiting or link.postransaction_id is not None:
                self._refresh_from(link)
                return
            link.postransaction_id = posted.id
            link.postransaction_url = posted.url
            old_state = link.state
            link.state = self.State.ACTIVE
            link.last_error = ""
            # A link chosen among candidates keeps them: the others may still need cancelling.
            link.needs_review = False
            fields = ["postransaction_id", "postransaction_url", "state", "last_error"]
            fields += ["needs_review", "next_check_at"]
            info = posted.payment_link
            if info:
                link.external_id = info.external_id
                link.payer_url = info.url
                link.expires_at = info.expiration_time
                fields += ["external_id", "payer_url", "expires_at"]
                # A fresh link's first statuses belong to its "created" event, not to events
                # of their own; anything further along (adopting a paid link) gets one below.
                if link.payment_status is None and info.payment_status == PaymentStatus.PENDING:
                    link.payment_status = info.payment_status
                    fields.append("payment_status")
                if link.delivery_status is None and info.delivery_status == DeliveryStatus.NOT_SENT:
                    link.delivery_status = info.delivery_status
                    fields.append("delivery_status")
            # Its first check, in the same transaction: no active link is left without one.
            link.next_check_at = next_check_at(link, timezone.now())
            link.save(update_fields=fields)
            old, new = _state(old_state), _state(link.state)
            link.event(kind, source, user, old, new, message, values=values)
            if posted.payment_link:
                link._apply_statuses(
                    posted.payment_link.payment_status,
                    posted.payment_link.delivery_status,
                    source=source,
                    user=user,
                )
        self._refresh_from(link)

    def record_status(
        self,
        posted: PosTransaction,
        *,
        source: str,
        user=None,
        now: dt.datetime | None = None,
    ) -> bool:
        """Apply what Provet says now; return whether anything changed. Never moves backwards."""
        info = posted.payment_link
        if info is None:
            return False
        if payment_rank(info.payment_status) <= payment_rank(self.payment_status) and delivery_rank(
            info.delivery_status
        ) <= delivery_rank(self.delivery_status):
            # Nothing new even against what we held (the row can only be further along):
            # the poller's usual answer costs one update, not a locked transaction.
            self.checked_at = now or timezone.now()
            PaymentLink.objects.filter(pk=self.pk).update(checked_at=self.checked_at)
            return False
        with transaction.atomic():
            link = self._locked()
            changed = link._apply_statuses(
                info.payment_status, info.delivery_status, source=source, user=user, now=now
            )
            link.checked_at = now or timezone.now()
            link.save(update_fields=["checked_at"])
        self._refresh_from(link)
        return changed

    def _apply_statuses(
        self,
        payment_status: int,
        delivery_status: int,
        *,
        source: str,
        user=None,
        now: dt.datetime | None = None,
    ) -> bool:
        """Inside a locked transaction: move the statuses forward, one event per change, each
        written once `self` holds the change."""
        now = now or timezone.now()
        fields = []
        if delivery_rank(delivery_status) > delivery_rank(self.delivery_status):
            old_delivery = self.delivery_status
            self.delivery_status = delivery_status
            fields.append("delivery_status")
            self.event(
                LinkEvent.Kind.DELIVERY_CHANGED,
                source,
                user,
                _label(DeliveryStatus, old_delivery),
                _label(DeliveryStatus, delivery_status),
            )
        if payment_rank(payment_status) > payment_rank(self.payment_status):
            old_payment = self.payment_status
            self.payment_status = payment_status
            fields.append("payment_status")
            if payment_status == PaymentStatus.ACCEPTED:
                self.paid_at = now
                fields.append("paid_at")
            if payment_status in PaymentStatus.final() and self.state == self.State.ACTIVE:
                self.state = self.State.CLOSED
                self.next_check_at = None
                fields += ["state", "next_check_at"]
            self.event(
                LinkEvent.Kind.PAYMENT_CHANGED,
                source,
                user,
                _label(PaymentStatus, old_payment),
                _label(PaymentStatus, payment_status),
            )
        if fields:
            self.save(update_fields=fields)
        return bool(fields)

    def mark(
        self,
        state: str,
        *,
        source: str,
        message: str,
        user=None,
        candidates: list[int] | None = None,
    ) -> None:
        """Move an attempt without an answer to `unknown` or `failed`, as an error event.

        `unknown` is handed to the reconciler in the same transaction (a request that dies
        next can't strand it); with `candidates`, to a person, who chooses among them.
        A link that has meanwhile become active or closed stays so: states only move forward.
        """
        needs_review = bool(candidates)
        with transaction.atomic():
            link = self._locked()
            if link.state not in self.UNDECIDED or (
                link.state == state and link.last_error == message
            ):
                self._refresh_from(link)
                return
            old_state = link.state
            link.state = state
            link.last_error = message
            link.needs_review = needs_review
            link.review_candidates = candidates or []
            if state == self.State.UNKNOWN and not needs_review:
                link.next_check_at = link.next_check_at or timezone.now()
            else:
                link.next_check_at = None
            link.save(
                update_fields=[
                    "state",
                    "last_error",
                    "needs_review",
                    "review_candidates",
                    "next_check_at",
                ]
            )
            link.event(
                LinkEvent.Kind.ERROR, source, user, _state(old_state), _state(state), message
            )
        self._refresh_from(link)

    def record_cancelled(
        self, *, user, source: str, message: "str | Said" = "", reason: str = ""
    ) -> None:
        """Provet has deleted the postransaction: the link can no longer be paid.

        A link that is already over (paid, expired, failed) keeps its ending: Provet refuses to
        delete a completed payment, and "not found" on an ended link says nothing new."""
        with transaction.atomic():
            link = self._locked()
            if link.cancelled_at or link.payment_status in PaymentStatus.final():
                self._refresh_from(link)
                return
            old_state = link.state
            link.state = self.State.CLOSED
            link.cancelled_at = timezone.now()
            link.next_check_at = None
            link.save(update_fields=["state", "cancelled_at", "next_check_at"])
            link.event(
                LinkEvent.Kind.CANCELLED,
                source,
                user,
                _state(old_state),
                "Cancelled",
                message,
                reason=reason,
            )
        self._refresh_from(link)


def _expired_unpaid() -> Q:
    """Expired links whose money is still missing, each counted once: the links the pages call
    "Expired" (words.status_words), the follow-up page lists and the automatic follow-up
    sends again (paylinks/followups.py).

    Not a link that was sent again or replaced: the link made in its place counts instead (as
    paid, waiting or expired in its turn). Not a link of an invoice with nothing left due: a
    later link, or a payment at the desk, collected that money."""
    settled = Invoice.objects.filter(pk=models.OuterRef("invoice_id"), due_sum__lte=0)
    return Q(payment_status=PaymentStatus.EXPIRED, cancelled_at__isnull=True) & ~Q(
        PaymentLinkQuerySet._replaced() | models.Exists(settled)
    )


# Which links each dashboard figure counts, among those created in its period (reports/figures.py).
# The links list offers the same filters (PaymentLinkQuerySet.counted_as), so a figure and its
# list always agree. Each rule is a function: a subquery can't be built before the models load.
_FIGURE_RULES: dict[str, Callable[[], Q]] = {
    "sent": lambda: Q(state__in=[PaymentLink.State.ACTIVE, PaymentLink.State.CLOSED]),
    "paid": lambda: Q(payment_status=PaymentStatus.ACCEPTED),
    "outstanding": lambda: Q(state=PaymentLink.State.ACTIVE, payment_status=PaymentStatus.PENDING),
    "expired": _expired_unpaid,
    "delivery_failed": lambda: Q(delivery_status=DeliveryStatus.FAILED),
}


class _LinkFigures(Mapping[str, Q]):
    """LINK_FIGURES["paid"]: the condition of a figure, as a Q, made afresh on each use."""

    def __getitem__(self, name: str) -> Q:
        return _FIGURE_RULES[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(_FIGURE_RULES)

    def __len__(self) -> int:
        return len(_FIGURE_RULES)


LINK_FIGURES: Mapping[str, Q] = _LinkFigures()


@dataclass(frozen=True)
class Said:
    """A stored message with values in it (ids, amounts, Provet's own words), of a LinkEvent or
    a DriftFinding: stored in English, shown in the reader's language (words.said).
    `template` is marked with gettext_noop where it is written; with `currency` among the
    values, `amount` and every `…_amount` are money, shown in the reader's money format.

        link.event(kind, source, message=Said(gettext_noop("… %(id)s …"), {"id": 7}))
    """

    template: str
    values: dict[str, Any]

    def english(self) -> str:
        values = dict(self.values)
        currency = values.pop("currency", None)
        for key in money_keys(values) if currency else ():
            values[key] = f"{values[key]} {currency}"
        return self.template % values


def money_keys(values: dict[str, Any]) -> list[str]:
    """The values of a Said that are amounts (with a `currency` beside them)."""
    return [key for key in values if key == "amount" or key.endswith("_amount")]


class EventType(models.TextChoices):
    CREATED = "link.created", _("link.created: the link exists in Provet")
    DELIVERED = "link.delivered", _("link.delivered: Provet sent the SMS or email")
    DELIVERY_FAILED = "link.delivery_failed", _("link.delivery_failed: the SMS or email failed")
    PAID = "link.paid", _("link.paid: the client paid")
    EXPIRED = "link.expired", _("link.expired: the link ended unpaid")
    CANCELLED = "link.cancelled", _("link.cancelled: cancelled in Provet")
    REPLACED = "link.replaced", _("link.replaced: a new link was made in its place")
    NEEDS_REVIEW = "link.needs_review", _("link.needs_review: a person must decide")


def announced(kind: str, link: PaymentLink) -> str:
    """What a LinkEvent of `kind` announces, read against its link holding the change: its
    outgoing event (paylinks/outbox.py), and the notices read it too (paylinks/views/notices.py).
    "" when nothing.

    | LinkEvent | the link now | announces |
    | --- | --- | --- |
    | created, reconciled (Provet's postransaction adopted) | | link.created |
    | delivery changed | delivery Sent / Delivery failed | link.delivered / delivery_failed |
    | payment changed | Paid / Expired / Cancelled by the client | link.paid / expired / cancelled |
    | cancelled | cancelled (`cancelled_at`: by staff, or deleted in Provet) | link.cancelled |
    | re-issued (a new link was made in its place) | | link.replaced |
    | error | needs review | link.needs_review |

    A declined payment (Payment failed) announces nothing: nobody asked for it."""
    if kind in (LinkEvent.Kind.CREATED, LinkEvent.Kind.RECONCILED):
        return EventType.CREATED  # written only by `adopt`: Provet's link became this one
    if kind == LinkEvent.Kind.DELIVERY_CHANGED and link.delivery_status is not None:
        return _DELIVERY_ANNOUNCED.get(link.delivery_status, "")
    if kind == LinkEvent.Kind.PAYMENT_CHANGED and link.payment_status is not None:
        return _PAYMENT_ANNOUNCED.get(link.payment_status, "")
    if kind == LinkEvent.Kind.CANCELLED and link.cancelled_at:
        # A review's "cancelled a duplicate of this link" leaves the link itself payable.
        return EventType.CANCELLED
    if kind == LinkEvent.Kind.REISSUED:
        return EventType.REPLACED
    if kind == LinkEvent.Kind.ERROR and link.needs_review:
        return EventType.NEEDS_REVIEW
    return ""


_DELIVERY_ANNOUNCED: dict[int, str] = {
    DeliveryStatus.SENT: EventType.DELIVERED,
    DeliveryStatus.FAILED: EventType.DELIVERY_FAILED,
}
_PAYMENT_ANNOUNCED: dict[int, str] = {
    PaymentStatus.ACCEPTED: EventType.PAID,
    PaymentStatus.EXPIRED: EventType.EXPIRED,
    PaymentStatus.ABORTED: EventType.CANCELLED,  # "Cancelled by the client" on the payer page
}


class LinkEvent(models.Model):
    """Append-only history of a link: the audit trail and the funnel."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        DELIVERY_CHANGED = "delivery", _("Delivery changed")
        PAYMENT_CHANGED = "payment", _("Payment changed")
        REFRESHED = "refreshed", _("Checked by hand")
        REISSUED = "reissued", _("Sent again")  # by Send again (the stored code is older)
        CANCELLED = "cancelled", _("Cancelled")
        RECONCILED = "reconciled", _("Reconciled")
        ERROR = "error", _("Error")

    class Source(models.TextChoices):
        USER = "user", _("Staff")
        POLLER = "poller", _("Poller")
        WEBHOOK = "webhook", _("Webhook")
        SYSTEM = "system", _("PayLinks")

    class Reason(models.TextChoices):
        """Why, where the kind alone doesn't tell the timeline enough (most events have none)."""

        DELETED_IN_PROVET = "deleted_in_provet", _("Deleted in Provet Cloud")
        REPLACED = "replaced", _("Replaced by a new link")
        DUPLICATE_CANCELLED = "duplicate_cancelled", _("Duplicate cancelled in Provet")

    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    source = models.CharField(max_length=8, choices=Source.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    # Decided once, when it is written (`announced`): its outgoing event and its notice.
    announces = models.CharField(max_length=30, choices=EventType.choices, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    old_value = models.CharField(max_length=100, blank=True)
    new_value = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)  # in English
    # A message with values (`Said`): its template and values, to show it in any language.
    message_template = models.TextField(blank=True)
    # Its values (ids, amounts), and codes of the event's own (a created link's delivery method).
    message_values = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.old_value} → {self.new_value}".strip()


class WebhookDelivery(models.Model):
    """Every webhook Provet sent us: its body is only a hint, the truth is re-read via the API."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)
    trigger = models.CharField(max_length=30, blank=True)
    invoice_provet_id = models.PositiveIntegerField(null=True, blank=True)
    unallocated_payment_id = models.PositiveIntegerField(null=True, blank=True)
    links_made_due = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.practice} {self.trigger or 'webhook'} at {self.received_at:%Y-%m-%d %H:%M}"


class DriftFinding(models.Model):
    """A mismatch between invoices and links found by the nightly drift check (paylinks/drift.py).

    A finding stays open until a later check no longer sees it; managers and admins see the open
    ones on the dashboard and in admin."""

    class Kind(models.TextChoices):
        PAID_LINK_INVOICE_DUE = "paid_link_due", _("Paid link, invoice still due")
        PAID_INVOICE_OPEN_LINKS = "paid_invoice_open", _("Paid invoice with open links")
        UNKNOWN_TOO_LONG = "unknown_too_long", _("Outcome unknown for over an hour")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="drift_findings")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    link = models.ForeignKey(
        PaymentLink, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    message = models.CharField(max_length=300)  # in English
    # Its template and values (`Said`), to show it in the reader's language.
    message_template = models.TextField(blank=True)
    message_values = models.JSONField(default=dict, blank=True)
    found_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-found_at", "id"]
        indexes = [
            models.Index(
                fields=["practice", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="drift_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


# Outgoing events: what PayLinks tells a clinic's other systems (paylinks/outbox.py writes them,
# paylinks/event_sending.py sends them).


def new_endpoint_secret() -> str:
    return "plsec_" + secrets.token_urlsafe(32)


# After "Rotate secret" the old secret still signs, beside the new one, this long.
ENDPOINT_SECRET_GRACE = dt.timedelta(hours=24)


class EventEndpoint(models.Model):
    """A URL of a clinic's system that PayLinks posts signed events to."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="event_endpoints")
    url = models.URLField(
        "URL",
        max_length=2000,
        help_text=_("https; http only for localhost while developing."),
    )
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text=_("The event types sent here."))
    is_active = models.BooleanField(default=True)
    # The signing secret, only ever stored encrypted (clinics/crypto.py); shown once.
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice", "url"]
        verbose_name = "event endpoint"

    def __str__(self) -> str:
        return f"{self.practice}: {self.url}"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)

    def signing_secrets(self, now: dt.datetime) -> list[str]:
        """The secrets that sign a request now: the current one, and the one before a rotation
        while its grace period lasts."""
        current = [self.secret]
        until = self.previous_secret_until
        if self.previous_secret_encrypted and until is not None and until > now:
            return [*current, crypto.decrypt(self.previous_secret_encrypted)]
        return current

    def rotate_secret(self) -> str:
        """A new secret, answered once; the old one still signs for ENDPOINT_SECRET_GRACE."""
        new = new_endpoint_secret()
        self.previous_secret_encrypted = self.secret_encrypted
        self.previous_secret_until = timezone.now() + ENDPOINT_SECRET_GRACE
        self.secret = new
        self.save(
            update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_until"]
        )
        return new


class OutgoingEvent(models.Model):
    """Something that happened to a link, for the practice's endpoints: written in the
    transaction of the change itself (paylinks/outbox.py), with the link as it was then."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="outgoing_events")
    type = models.CharField(max_length=30, choices=EventType.choices)
    # `data` of the body: {"link": {...}}.
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A link is created, delivered, paid, expired, cancelled once: a change seen twice
            # (the poller and a webhook) can't be announced twice. It may be replaced again
            # when the link made in its place was never created.
            models.UniqueConstraint(
                fields=["link", "type"],
                condition=~Q(type="link.replaced"),
                name="outgoing_event_once_per_link",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class EventDelivery(models.Model):
    """One event for one endpoint: attempts, with backoff, until it is answered 2xx or a day
    has passed (paylinks/event_sending.py)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Being sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(OutgoingEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(EventEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "event deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="event_delivery_once_per_endpoint"
            )
        ]
        indexes = [
            # Used by paylinks.tasks.send_due_events to find the deliveries due an attempt.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="event_delivery_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.type} to {self.endpoint.url}"


class NoticeDismissal(models.Model):
    """A person has dismissed the notice that a link was paid, expired or failed delivery
    (the notices on every staff page, paylinks/views/notices.py). One per person, link and kind:
    a link that expired and was then paid after all shows its "Paid" notice too."""

    class Kind(models.TextChoices):
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired unpaid")
        DELIVERY_FAILED = "delivery_failed", _("Delivery failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notice_dismissals"
    )
    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Dismissing twice (two tabs, a double click) keeps one row.
            models.UniqueConstraint(fields=["user", "link", "kind"], name="notice_dismissed_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} dismissed {self.kind} of {self.link_id}"

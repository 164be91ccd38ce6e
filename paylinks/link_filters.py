"""Which links a list shows: the links list's filters and search (a person's name, an invoice
number, an e-mail, a phone however it is typed), used by the links page, the API's list and
the dashboard's figures, each of which opens the list behind it."""

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.utils.translation import gettext_lazy as _

from clinics import formats, phones
from clinics.models import Membership, midnight
from paylinks.forms import DayField
from paylinks.models import (
    LINK_FIGURES,
    DeliveryMethod,
    PaymentLink,
    PaymentStatus,
)

# The links list's `created_by` value for links nobody in PayLinks made (found in Provet, or their
# maker's account was removed). Parentheses never occur in a username.
NOBODY = "(none)"

STATUS_FILTERS = {
    "open": PaymentLink.open_q(),
    "paid": Q(payment_status=PaymentStatus.ACCEPTED),
    # Expired and still unpaid: not replaced, and nothing left due meanwhile (the dashboard's).
    "expired": LINK_FIGURES["expired"],
    "failed": Q(payment_status=PaymentStatus.FAILED) | Q(state=PaymentLink.State.FAILED),
    "cancelled": Q(cancelled_at__isnull=False) | Q(payment_status=PaymentStatus.ABORTED),
    "unknown": Q(state=PaymentLink.State.UNKNOWN),
    # The dashboard's figures (reports/figures.py), each a link to the list behind it.
    "sent": LINK_FIGURES["sent"],
    "outstanding": LINK_FIGURES["outstanding"],
    "delivery_failed": LINK_FIGURES["delivery_failed"],
}


class LinkFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": _("Client, invoice number, e-mail or phone"), "type": "search"}
        ),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        # What a person is looking for, not the link's internal state.
        choices=[
            ("", _("Any status")),
            ("open", _("Waiting for payment")),
            ("paid", _("Paid")),
            ("expired", _("Expired unpaid")),
            ("failed", _("Payment failed or not created")),
            ("cancelled", _("Cancelled")),
            ("unknown", _("Waiting for Provet's answer")),
            ("sent", _("Sent or handed over")),
            ("outstanding", _("Sent, still payable")),
            ("delivery_failed", _("SMS or e-mail failed")),
        ],
    )
    department = forms.TypedChoiceField(label=_("Department"), required=False, coerce=int)
    channel = forms.TypedChoiceField(
        label=_("Sent by"),
        required=False,
        coerce=int,
        choices=[("", _("Any way")), *DeliveryMethod.choices],
    )
    created_by = forms.ChoiceField(label=_("Made by"), required=False)
    date = DayField(label=_("Made on"), required=False)
    created_from = DayField(label=_("Made from"), required=False)
    created_to = DayField(label=_("Made until"), required=False)

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.fields["department"].choices = [("", _("All departments"))] + [
            (d.provet_id, d.name) for d in practice.departments.all()
        ]
        # The practice's staff, and whoever made one of its links and has left since.
        member = Membership.objects.filter(user=OuterRef("pk"), practice=practice)
        maker = PaymentLink.objects.filter(created_by=OuterRef("pk"), practice=practice)
        staff = (
            get_user_model()
            .objects.filter(Exists(member) | Exists(maker))
            .order_by("first_name", "username")
        )
        self.fields["created_by"].choices = [
            ("", _("Anyone")),
            *[(u.username, formats.person(u)) for u in staff],
            (NOBODY, _("Someone in Provet itself")),
        ]

    def clean(self):
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and end < start:
            self.add_error("created_to", _("The range ends before it starts."))
        return data

    def apply(self, links: QuerySet[PaymentLink]) -> QuerySet[PaymentLink]:
        """The links the filters pick; all of them while a filter is wrong (its field says why)."""
        if not self.is_valid():
            return links
        data = self.cleaned_data
        if data["status"]:
            links = links.filter(STATUS_FILTERS[data["status"]])
        if data["department"]:
            links = links.filter(department__provet_id=data["department"])
        if data["channel"] != "":
            links = links.filter(delivery_method=data["channel"])
        if data["created_by"] == NOBODY:
            links = links.filter(created_by__isnull=True)
        elif data["created_by"]:
            links = links.filter(created_by__username=data["created_by"])
        # Days as the practice lives them, not as UTC draws them.
        if data["date"]:
            links = links.filter(
                created_at__gte=self._midnight(data["date"]),
                created_at__lt=self._midnight(data["date"] + dt.timedelta(days=1)),
            )
        if data["created_from"]:
            links = links.filter(created_at__gte=self._midnight(data["created_from"]))
        if data["created_to"]:
            day_after = data["created_to"] + dt.timedelta(days=1)
            links = links.filter(created_at__lt=self._midnight(day_after))
        if data["q"]:
            text = data["q"].strip()
            links = links.annotate(
                phone_compact=_compact("phone"),
                invoice_phone_compact=_compact("invoice__client_phone"),
            ).filter(
                Q(client_name__icontains=text)
                | Q(invoice__number__icontains=text)
                | Q(email__icontains=text)
                | _phone_matches(text, self.practice.country)
            )
        return links

    def _midnight(self, day: dt.date) -> dt.datetime:
        return midnight(day, self.practice.zone)


def _compact(field: str):
    """A phone field without its punctuation, in the database: "040 671 6444" -> "0406716444"."""
    expression: F | Replace = F(field)
    for mark in phones.PUNCTUATION:
        expression = Replace(expression, Value(mark), Value(""))
    return expression


def _phone_matches(text: str, country: str) -> Q:
    """Links whose phone, or their invoice client's, is the number typed, however it was typed
    or stored (phones.search_digits on both sides' digits)."""
    found = Q(pk__in=[])
    for digits in phones.search_digits(text, country):
        found |= Q(phone_compact__contains=digits) | Q(invoice_phone_compact__contains=digits)
    return found

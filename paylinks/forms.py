"""The link forms: every rule of DESIGN.md "Rules for input", each message at its field."""

import datetime as dt
import re
import secrets
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinics import formats, phones
from clinics.models import MAX_LINK_MINUTES, MIN_LINK_MINUTES, Department, Practice
from paylinks.create import LinkDraft, above_due
from paylinks.models import (
    DeliveryMethod,
    Invoice,
    PaymentLink,
    RecurringModel,
    Tokenize,
)

DURATIONS = [
    ("60", gettext_lazy("1 hour")),
    ("1440", gettext_lazy("24 hours")),
    ("2880", gettext_lazy("48 hours")),
    ("10080", gettext_lazy("7 days")),
    ("custom", gettext_lazy("Custom")),
]
FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# What an amount may look like: digits, then at most one decimal separator, a comma or a point.
AMOUNT = re.compile(r"^[0-9]*(?:[.,][0-9]*)?$")
MAX_WHOLE_DIGITS = 10
# The searches' examples: a surname as common at a desk in the practice's country as Virtanen is
# in Finland, so a UK desk isn't shown a Finnish one. Countries not here get no surname.
EXAMPLE_SURNAMES = {
    "FI": "Virtanen",
    "SE": "Andersson",
    "GB": "Smith",
    "IE": "Murphy",
    "NO": "Hansen",
    "DK": "Jensen",
    "DE": "Müller",
    "EE": "Tamm",
    "NL": "de Jong",
}
EXAMPLE_INVOICE = "1042"


def search_examples(country: str) -> dict[str, str]:
    """The placeholders of the invoice search and the prepayment's client search."""
    surname = EXAMPLE_SURNAMES.get(country)
    number = EXAMPLE_INVOICE
    if surname is None:
        return {"invoice": _("e.g. %(number)s or a surname") % {"number": number}, "client": ""}
    return {
        "invoice": _("e.g. %(number)s or %(surname)s") % {"number": number, "surname": surname},
        "client": _("e.g. %(surname)s") % {"surname": surname},
    }


def new_form_token() -> str:
    """The one-time token a rendered form carries; it becomes the link's idempotency key."""
    return secrets.token_urlsafe(24)


class AmountField(forms.CharField):
    """Money as typed at a desk: `12,50`, `12.50` and `12.5` are all 12.50.

    A text field, not `type=number`: browsers read a decimal comma in their own ways (one
    turned `12,50` into 1250). Anything that could mean two things gets a message instead."""

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        return {**attrs, "inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}

    def to_python(self, value) -> Decimal | None:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return None
        if text.startswith("-"):
            raise ValidationError(_("The amount must be more than zero."))
        separators = sum(text.count(mark) for mark in ".,")
        if separators > 1:
            raise ValidationError(
                _("Use one decimal separator and no thousands separators, e.g. 1250,50 or 1250.50.")
            )
        if not AMOUNT.match(text) or not any(c.isdigit() for c in text):
            raise ValidationError(_("Enter the amount as a number, e.g. 120,50 or 120.50."))
        whole, _point, decimals = text.replace(",", ".").partition(".")
        if len(decimals) > 2:
            raise ValidationError(_("Use at most two decimals, e.g. 120,50."))
        if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
            raise ValidationError(_("That amount is too large."))
        amount = Decimal(f"{whole or '0'}.{decimals or '0'}").quantize(Decimal("0.01"))
        if amount <= 0:
            raise ValidationError(_("The amount must be more than zero."))
        return amount


class LinkForm(forms.Form):
    amount = AmountField(
        label=gettext_lazy("Amount"),
        error_messages={"required": gettext_lazy("Enter the amount to charge.")},
    )
    delivery_method = forms.TypedChoiceField(
        label=gettext_lazy("Send the link"),
        coerce=int,
        choices=[
            (
                DeliveryMethod.DONT_SEND,
                gettext_lazy("Don't send (copy the link or show the QR code)"),
            ),
            (DeliveryMethod.SMS_AND_EMAIL, gettext_lazy("SMS and email")),
            (DeliveryMethod.EMAIL, gettext_lazy("Email only")),
            (DeliveryMethod.SMS, gettext_lazy("SMS only")),
        ],
        widget=forms.RadioSelect,
    )
    email = forms.EmailField(
        label=gettext_lazy("Email"),
        required=False,
        error_messages={"invalid": gettext_lazy("This is not a valid email address.")},
    )
    phone = forms.CharField(label=gettext_lazy("Mobile phone"), required=False, max_length=32)
    description = forms.CharField(
        label=gettext_lazy("Description shown to the client"),
        max_length=255,
        error_messages={
            "required": gettext_lazy("Write what the payment is for; the client sees it."),
            "max_length": gettext_lazy(
                "Keep the description to 255 characters (it has %(show_value)d)."
            ),
        },
    )
    duration = forms.ChoiceField(label=gettext_lazy("Link valid for"), choices=DURATIONS)
    custom_minutes = forms.IntegerField(
        label=gettext_lazy("Custom duration in minutes"),
        required=False,
        min_value=MIN_LINK_MINUTES,
        max_value=MAX_LINK_MINUTES,
        error_messages={
            "min_value": gettext_lazy("A link must stay valid for at least 5 minutes."),
            "max_value": gettext_lazy("A link can stay valid for at most 30 days (43200 minutes)."),
            "invalid": gettext_lazy("Enter the number of minutes."),
        },
    )
    return_url = forms.URLField(
        label=gettext_lazy("Return address after paying"),
        required=False,
        max_length=2000,
        assume_scheme="https",
        error_messages={
            "invalid": gettext_lazy("Enter a full web address starting with https://."),
            "max_length": gettext_lazy("The address is too long (at most 2000 characters)."),
        },
    )
    tokenize = forms.ChoiceField(
        label=gettext_lazy("Card saving"),
        required=False,
        choices=Tokenize.choices,
        widget=forms.RadioSelect,
    )
    recurring_model = forms.ChoiceField(
        label=gettext_lazy("The saved card will be used for"),
        required=False,
        choices=[
            ("", gettext_lazy("Choose…")),
            (RecurringModel.ONE_OFF, gettext_lazy("One-off payments")),
            (RecurringModel.SUBSCRIPTION, gettext_lazy("A subscription or health plan")),
        ],
    )
    consent = forms.BooleanField(
        label=gettext_lazy("The client has consented to saving their card"), required=False
    )
    form_token = forms.CharField(widget=forms.HiddenInput)

    def __init__(
        self,
        *args,
        practice: Practice,
        no_sms: bool = False,
        no_email: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.no_sms = no_sms
        self.no_email = no_email
        self.fields["phone"].help_text = _(
            "Numbers without a country code are read as %(country)s numbers."
        ) % {"country": practice.country}
        for name in ("email", "phone"):
            self.fields[name].widget.attrs["autocomplete"] = "off"

    def draft(self, created_by, **subject) -> LinkDraft:
        """The valid form as paylinks.create.create_link takes it: the one way the pages and the
        API make a link. `subject`: `invoice`, or a prepayment's `client_id` and `client_name`."""
        data = self.cleaned_data
        invoice = subject.get("invoice")
        return LinkDraft(
            practice=self.practice,
            department=invoice.department if invoice else data["department"],
            amount=data["amount"],
            delivery_method=data["delivery_method"],
            email=data["email"],
            phone=data["phone"],
            description=data["description"],
            duration_minutes=data["duration_minutes"],
            return_url=data["return_url"],
            tokenize=data["tokenize"],
            recurring_model=data["recurring_model"],
            consent=data["consent"],
            created_by=created_by,
            idempotency_key=data["form_token"],
            invoice=invoice,
            client_provet_id=subject.get("client_id"),
            client_name=subject.get("client_name", ""),
            prepayment_description=data["description"] if invoice is None else "",
            replaces=data.get("replace"),
        )

    def amount_to_charge(self) -> Decimal | None:
        """The amount as the form reads it, shown beside the button before it is pressed."""
        if not self.is_bound:
            return self.initial.get("amount")
        try:
            return self.fields["amount"].clean(self.data.get(self.add_prefix("amount"), ""))
        except ValidationError:
            return None

    def clean_form_token(self) -> str:
        token = self.cleaned_data["form_token"]
        if not FORM_TOKEN.match(token):
            raise ValidationError(_("This form has expired: reload the page and try again."))
        return token

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"].strip()
        return phones.e164(raw, self.practice.country) if raw else ""

    def clean_return_url(self) -> str:
        url = self.cleaned_data["return_url"]
        if url and urlsplit(url).scheme != "https" and not self._http_allowed():
            raise ValidationError(_("The return address must start with https://."))
        return url

    def _http_allowed(self) -> bool:
        # Plain http only where nothing real is paid: the sandbox.
        return settings.PAYLINKS_SANDBOX and "/sandbox/" in self.practice.base_url

    def clean(self):
        cleaned = super().clean()
        self._clean_duration(cleaned)
        self._clean_delivery(cleaned)
        self._clean_card_saving(cleaned)
        return cleaned

    def _clean_duration(self, cleaned: dict) -> None:
        choice = cleaned.get("duration")
        if choice == "custom":
            minutes = cleaned.get("custom_minutes")
            if minutes is None and "custom_minutes" not in self.errors:
                self.add_error("custom_minutes", _("Enter how many minutes the link stays valid."))
            cleaned["duration_minutes"] = minutes
        elif choice:
            cleaned["duration_minutes"] = int(choice)

    def _clean_delivery(self, cleaned: dict) -> None:
        method = cleaned.get("delivery_method")
        if method is None:
            return
        method = DeliveryMethod(method)
        if method.needs_phone:
            phone = cleaned.get("phone")
            if self.no_sms:
                self.add_error(
                    "delivery_method",
                    _(
                        "This client has asked not to get text messages: choose email or "
                        "don't send."
                    ),
                )
            elif not phone and "phone" not in self.errors:
                self.add_error("phone", _("Enter the mobile number the SMS goes to."))
            elif phone and not phones.can_take_sms(phone, self.practice.country):
                self.add_error(
                    "phone",
                    _(
                        "This is not a mobile number, so a text message can't reach it. Enter a "
                        "mobile number (like %(example)s), or choose email or don't send."
                    )
                    % {"example": phones.mobile_example(self.practice.country)},
                )
        if method.needs_email:
            if self.no_email:
                self.add_error(
                    "delivery_method",
                    _("This client has asked not to get emails: choose SMS or don't send."),
                )
            elif not cleaned.get("email") and "email" not in self.errors:
                self.add_error("email", _("Enter the email address the link goes to."))

    def _clean_card_saving(self, cleaned: dict) -> None:
        tokenize = cleaned.get("tokenize") or Tokenize.OFF
        cleaned["tokenize"] = tokenize
        if tokenize == Tokenize.OFF:
            cleaned["recurring_model"] = ""
            cleaned["consent"] = False
            return
        if not cleaned.get("recurring_model"):
            self.add_error(
                "recurring_model", _("Choose how the saved card will be used (needed to save it).")
            )
        if tokenize == Tokenize.YES and not cleaned.get("consent"):
            self.add_error(
                "consent",
                _(
                    "Saving the card needs the client's consent. Tick this once they have agreed, "
                    "or choose 'Ask the client'."
                ),
            )


class InvoiceLinkForm(LinkForm):
    """A link for an invoice: for what is still free, or in place of a link waiting for payment.

    "Free" is the due sum less what the invoice's payable links ask for. A full new link while
    one is waiting is the explicit "Replace", which cancels the old link first."""

    replace = forms.ChoiceField(
        label=gettext_lazy("This link is"),
        required=False,
        widget=forms.RadioSelect,
        error_messages={
            "invalid_choice": gettext_lazy(
                "That link is no longer waiting for payment: look at the "
                "invoice's links above and choose again."
            )
        },
    )

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(
            *args, no_sms=invoice.client_no_sms, no_email=invoice.client_no_email, **kwargs
        )
        self.invoice = invoice
        self.payable = list(
            invoice.open_links().select_related("created_by").order_by("created_at")
        )
        self.asked = invoice.asked_for()
        self.free = max(invoice.due_sum - self.asked, Decimal("0"))
        # Only a link Provet has made can be cancelled and so replaced.
        self.replaceable = [link for link in self.payable if link.state == PaymentLink.State.ACTIVE]
        currency = self.practice.currency
        self.fields["replace"].choices = [  # type: ignore[attr-defined]
            (
                "",
                _("A new link for what is still free (%(amount)s)")
                % {"amount": formats.money(self.free, currency)},
            ),
            *[(str(link.code), self._replace_label(link)) for link in self.replaceable],
        ]

    def _replace_label(self, link: PaymentLink) -> str:
        made = timezone.localtime(link.created_at, ZoneInfo(self.practice.timezone))
        maker = formats.person(link.created_by)
        words = {
            "amount": formats.money(link.amount, link.currency),
            "moment": formats.moment(made),
            "maker": maker,
        }
        if maker:
            return (
                _(
                    "In place of the link for %(amount)s made %(moment)s by %(maker)s "
                    "(it is cancelled first)"
                )
                % words
            )
        if link.imported:
            return (
                _(
                    "In place of the link for %(amount)s made %(moment)s in Provet "
                    "(it is cancelled first)"
                )
                % words
            )
        return (
            _("In place of the link for %(amount)s made %(moment)s (it is cancelled first)") % words
        )

    def initial_amount(self) -> Decimal | None:
        """What the form starts with: what is free; all that is due when the one waiting link
        is to be replaced; nothing when the person must first choose which link to replace."""
        if self.free > 0:
            return self.free
        if self.initial_replace():
            return self.invoice.due_sum
        return None

    def initial_replace(self) -> str:
        """Nothing free and one link waiting: replacing it is the likely wish."""
        if self.free <= 0 and len(self.replaceable) == 1 and len(self.payable) == 1:
            return str(self.replaceable[0].code)
        return ""

    def clean_replace(self) -> PaymentLink | None:
        code = self.cleaned_data["replace"]
        if not code:
            return None
        return next(link for link in self.replaceable if str(link.code) == code)

    def clean(self):
        cleaned = super().clean()
        invoice = self.invoice
        problem = invoice.link_problem()
        if problem:
            raise ValidationError(problem)
        # A hint at the field; paylinks/create.py checks it again under the invoice's lock.
        amount = cleaned.get("amount")
        if amount is not None:
            problem = above_due(invoice, amount, replacing=cleaned.get("replace"))
            if problem:
                self.add_error("amount", problem)
        return cleaned


class PrepaymentLinkForm(LinkForm):
    client = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    department = forms.ModelChoiceField(
        label=gettext_lazy("Department"),
        queryset=Department.objects.none(),
        empty_label=gettext_lazy("Choose…"),
        error_messages={"required": gettext_lazy("Choose the department the prepayment is for.")},
    )

    field_order = ["department", "amount"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = self.practice.departments.all()
        self.fields["department"].label_from_instance = lambda d: (
            d.name
            if d.allow_nhp_processing
            else _("%(department)s (no Provet Pay)") % {"department": d.name}
        )

    def clean_department(self) -> Department:
        department = self.cleaned_data["department"]
        if not department.allow_nhp_processing:
            raise ValidationError(
                _("Provet Pay is not allowed in %(department)s: choose another department.")
                % {"department": department.name}
            )
        return department


# The days anyone may ask about. A date outside is a slip of the keyboard (year 1, year 9999), and
# its midnight may not even exist as a moment: year 1 in Helsinki is before year 1 in UTC.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def _within_reach(day: dt.date) -> None:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(
            _("Pick a date between %(first)s and %(last)s.")
            % {"first": formats.day(FIRST_DAY), "last": formats.day(LAST_DAY)},
            code="out_of_range",
        )


class DayField(forms.DateField):
    """A day to filter by, the dashboard's or the links list's: between FIRST_DAY and LAST_DAY."""

    default_validators = [_within_reach]
    widget = forms.DateInput(
        attrs={"type": "date", "min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()}
    )

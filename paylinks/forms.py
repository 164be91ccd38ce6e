"""The link forms: every rule of DESIGN.md "Rules for input", each message at its field."""

import re
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import phonenumbers
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from clinics.models import MAX_LINK_MINUTES, MIN_LINK_MINUTES, Department, Practice
from paylinks.models import DeliveryMethod, Invoice, InvoiceStatus, RecurringModel, Tokenize

DURATIONS = [
    ("60", "1 hour"),
    ("1440", "24 hours"),
    ("2880", "48 hours"),
    ("10080", "7 days"),
    ("custom", "Custom"),
]
FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_form_token() -> str:
    """The one-time token a rendered form carries; it becomes the link's idempotency key."""
    return secrets.token_urlsafe(24)


def e164(raw: str, country: str) -> str:
    """A phone number as Provet stores it (+358401234567), read in the practice's country."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
        hint = (
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if example
            else "+358 40 1234567"
        )
        raise ValidationError(f"This is not a valid phone number. Write it like {hint}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class LinkForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount",
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        error_messages={
            "required": "Enter the amount to charge.",
            "invalid": "Enter the amount as a number, e.g. 120.50.",
            "min_value": "The amount must be more than zero.",
            "max_decimal_places": "Use at most two decimals, e.g. 120.50.",
            "max_digits": "That amount is too large.",
            "max_whole_digits": "That amount is too large.",
        },
    )
    delivery_method = forms.TypedChoiceField(
        label="Send the link",
        coerce=int,
        choices=[
            (DeliveryMethod.DONT_SEND, "Don't send (copy the link or show the QR code)"),
            (DeliveryMethod.SMS_AND_EMAIL, "SMS and email"),
            (DeliveryMethod.EMAIL, "Email only"),
            (DeliveryMethod.SMS, "SMS only"),
        ],
        widget=forms.RadioSelect,
    )
    email = forms.EmailField(
        label="Email",
        required=False,
        error_messages={"invalid": "This is not a valid email address."},
    )
    phone = forms.CharField(label="Mobile phone", required=False, max_length=32)
    description = forms.CharField(
        label="Description shown to the client",
        max_length=255,
        error_messages={
            "required": "Write what the payment is for; the client sees it.",
            "max_length": "Keep the description to 255 characters (it has %(show_value)d).",
        },
    )
    duration = forms.ChoiceField(label="Link valid for", choices=DURATIONS)
    custom_minutes = forms.IntegerField(
        label="Custom duration in minutes",
        required=False,
        min_value=MIN_LINK_MINUTES,
        max_value=MAX_LINK_MINUTES,
        error_messages={
            "min_value": "A link must stay valid for at least 5 minutes.",
            "max_value": "A link can stay valid for at most 30 days (43200 minutes).",
            "invalid": "Enter the number of minutes.",
        },
    )
    return_url = forms.URLField(
        label="Return address after paying",
        required=False,
        max_length=2000,
        assume_scheme="https",
        error_messages={
            "invalid": "Enter a full web address starting with https://.",
            "max_length": "The address is too long (at most 2000 characters).",
        },
    )
    tokenize = forms.ChoiceField(
        label="Card saving",
        required=False,
        choices=Tokenize.choices,
        widget=forms.RadioSelect,
    )
    recurring_model = forms.ChoiceField(
        label="The saved card will be used for",
        required=False,
        choices=[
            ("", "Choose…"),
            (RecurringModel.ONE_OFF, "One-off payments"),
            (RecurringModel.SUBSCRIPTION, "A subscription or health plan"),
        ],
    )
    consent = forms.BooleanField(
        label="The client has consented to saving their card", required=False
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
        self.fields[
            "phone"
        ].help_text = f"Numbers without a country code are read as {practice.country} numbers."
        for name in ("email", "phone"):
            self.fields[name].widget.attrs["autocomplete"] = "off"
        self.fields["amount"].widget.attrs.update(inputmode="decimal", step="0.01")

    def clean_form_token(self) -> str:
        token = self.cleaned_data["form_token"]
        if not FORM_TOKEN.match(token):
            raise ValidationError("This form has expired: reload the page and try again.")
        return token

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"].strip()
        return e164(raw, self.practice.country) if raw else ""

    def clean_return_url(self) -> str:
        url = self.cleaned_data["return_url"]
        if url and urlsplit(url).scheme != "https" and not self._http_allowed():
            raise ValidationError("The return address must start with https://.")
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
                self.add_error("custom_minutes", "Enter how many minutes the link stays valid.")
            cleaned["duration_minutes"] = minutes
        elif choice:
            cleaned["duration_minutes"] = int(choice)

    def _clean_delivery(self, cleaned: dict) -> None:
        method = cleaned.get("delivery_method")
        if method is None:
            return
        method = DeliveryMethod(method)
        if method.needs_phone:
            if self.no_sms:
                self.add_error(
                    "delivery_method",
                    "This client has asked not to get text messages: choose email or don't send.",
                )
            elif not cleaned.get("phone") and "phone" not in self.errors:
                self.add_error("phone", "Enter the mobile number the SMS goes to.")
        if method.needs_email:
            if self.no_email:
                self.add_error(
                    "delivery_method",
                    "This client has asked not to get emails: choose SMS or don't send.",
                )
            elif not cleaned.get("email") and "email" not in self.errors:
                self.add_error("email", "Enter the email address the link goes to.")

    def _clean_card_saving(self, cleaned: dict) -> None:
        tokenize = cleaned.get("tokenize") or Tokenize.OFF
        cleaned["tokenize"] = tokenize
        if tokenize == Tokenize.OFF:
            cleaned["recurring_model"] = ""
            cleaned["consent"] = False
            return
        if not cleaned.get("recurring_model"):
            self.add_error(
                "recurring_model", "Choose how the saved card will be used (needed to save it)."
            )
        if tokenize == Tokenize.YES and not cleaned.get("consent"):
            self.add_error(
                "consent",
                "Saving the card needs the client's consent. Tick this once they have agreed, "
                "or choose 'Ask the client'.",
            )


class InvoiceLinkForm(LinkForm):
    confirm_another = forms.BooleanField(
        label="Yes, make another link for this invoice", required=False
    )

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(
            *args, no_sms=invoice.client_no_sms, no_email=invoice.client_no_email, **kwargs
        )
        self.invoice = invoice

    @staticmethod
    def invoice_problem(invoice: Invoice) -> str:
        """Why no link can be made for this invoice at all, or "" when one can."""
        if invoice.status != InvoiceStatus.FINALIZED:
            return (
                f"Invoice {invoice} is {invoice.get_status_display().lower()}: only a finalized "
                "invoice can be paid. Finalize it in Provet first."
            )
        if invoice.credit_note:
            return f"Invoice {invoice} is a credit note: there is nothing to pay."
        department = invoice.department
        if department is None or not department.allow_nhp_processing:
            name = department.name if department else "its department"
            return f"Provet Pay is not allowed in {name}, so no link can be made for this invoice."
        if invoice.due_sum <= 0:
            return f"Nothing is due on invoice {invoice}: it has been paid."
        return ""

    def clean(self):
        cleaned = super().clean()
        invoice = self.invoice
        problem = self.invoice_problem(invoice)
        if problem:
            raise ValidationError(problem)
        amount = cleaned.get("amount")
        if amount is not None and amount > invoice.due_sum:
            self.add_error(
                "amount",
                f"Only {invoice.due_sum} {self.practice.currency} is due on this invoice; "
                "the link can't ask for more.",
            )
        if invoice.open_links().exists() and not cleaned.get("confirm_another"):
            self.add_error(
                "confirm_another",
                "This invoice already has a link waiting for payment. Tick to make another "
                "one anyway, or use 'Send again' on the existing link.",
            )
        return cleaned


class PrepaymentLinkForm(LinkForm):
    client = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    department = forms.ModelChoiceField(
        label="Department",
        queryset=Department.objects.none(),
        empty_label="Choose…",
        error_messages={"required": "Choose the department the prepayment is for."},
    )

    field_order = ["department", "amount"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = self.practice.departments.all()
        self.fields["department"].label_from_instance = lambda d: (
            d.name if d.allow_nhp_processing else f"{d.name} (no Provet Pay)"
        )

    def clean_department(self) -> Department:
        department = self.cleaned_data["department"]
        if not department.allow_nhp_processing:
            raise ValidationError(
                f"Provet Pay is not allowed in {department.name}: choose another department."
            )
        return department

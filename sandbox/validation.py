"""Validation of `POST /postransaction/`, answering field errors the way Provet's DRF does."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db.models import Model

from sandbox.models import (
    Client,
    DeliveryMethod,
    Department,
    Installation,
    Invoice,
    InvoiceStatus,
    ProvetUser,
)

REQUIRED = "This field is required."
PROVET_PAY = {"payment_type": 5003, "transaction_type": 4, "terminal_id": 0}
DEFAULT_DURATION = 2880  # minutes, as in Provet's examples
MAX_DURATION = 525600  # a year (assumed)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
API_PATH = re.compile(r"/(?P<provet_id>\d+)/api/0\.1/(?P<resource>[a-z]+)/(?P<pk>\d+)/?$")
TOKENIZE = ("yes", "no", "ask")
RECURRING_MODELS = ("subscription", "one-off")


class Invalid(Exception):
    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


@dataclass
class LinkRequest:
    amount: Decimal
    creator: ProvetUser
    department: Department
    invoice: Invoice | None
    prepayment_client: Client | None
    prepayment_department: Department | None
    prepayment_description: str
    duration: int
    delivery_method: int
    email: str
    phone: str
    description: str
    return_url: str
    tokenize: str
    recurring_model: str


def validate(installation: Installation, data: object) -> LinkRequest:
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": [_expected_dict(data)]})
    errors: dict = {}
    amount = _amount(data, errors)
    for name, expected in PROVET_PAY.items():
        value = _integer(data, name, errors, required=True)
        if value is not None and value != expected:
            errors[name] = [f"Provet Pay payments need {name} {expected}."]
    creator = _hyperlink(installation, data, "creator", "user", ProvetUser, errors, True)
    department = _hyperlink(
        installation, data, "department", "department", Department, errors, True
    )
    if department is not None and not department.allow_nhp_processing:
        errors["department"] = ["Provet Pay is not allowed in this department."]
    invoice = _hyperlink(installation, data, "invoice", "invoice", Invoice, errors, False)

    link_errors: dict = {}
    link = data.get("payment_link_data")
    if link is None:
        errors["payment_link_data"] = [
            REQUIRED if "payment_link_data" not in data else "This field may not be null."
        ]
        link = {}
    elif not isinstance(link, dict):
        errors["payment_link_data"] = [_expected_dict(link)]
        link = {}
    invoice_by_id = _pk(installation, link, "invoice_id", Invoice, link_errors)
    duration = _integer(link, "duration", link_errors, minimum=1, maximum=MAX_DURATION)
    method = _choice(link, "delivery_method", tuple(DeliveryMethod.values), link_errors)
    email = _text(link, "email", link_errors, blank=False)
    if email and not _valid_email(email):
        link_errors["email"] = ["Enter a valid email address."]
    phone = _text(link, "phone", link_errors, blank=False)
    if phone and not E164.match(phone):
        link_errors["phone"] = ["Enter a valid phone number in E.164 format (e.g. +358401234567)."]
    description = _text(link, "description", link_errors, max_length=255)
    return_url = _text(link, "return_url", link_errors, max_length=2000)
    if return_url and not _valid_url(return_url):
        link_errors["return_url"] = ["Enter a valid URL."]
    tokenize = _choice(link, "tokenize", TOKENIZE, link_errors)
    recurring_model = _choice(link, "recurring_model", RECURRING_MODELS, link_errors)
    if tokenize is not None and recurring_model is None and "recurring_model" not in link_errors:
        link_errors["recurring_model"] = ["This field is required when tokenize is given."]
    if link_errors:
        errors["payment_link_data"] = link_errors

    prepayment = _prepayment(installation, data, errors)
    if errors:
        raise Invalid(errors)

    if invoice and invoice_by_id and invoice.pk != invoice_by_id.pk:
        raise Invalid(
            {
                "non_field_errors": [
                    "invoice and payment_link_data.invoice_id name different invoices."
                ]
            }
        )
    invoice_key = "invoice" if invoice else "invoice_id"
    invoice = invoice or invoice_by_id
    if invoice and prepayment:
        raise Invalid(
            {"non_field_errors": ["A payment link is for an invoice or a prepayment, not both."]}
        )
    if not invoice and not prepayment:
        raise Invalid({"non_field_errors": ["Give an invoice or prepayment_data."]})

    if invoice is not None:
        problem = _unpayable(invoice)
        if problem:
            raise Invalid(
                {"invoice": [problem]}
                if invoice_key == "invoice"
                else {"payment_link_data": {"invoice_id": [problem]}}
            )
        if amount > invoice.due_sum:
            raise Invalid(
                {
                    "amount": [
                        f"Ensure this value is less than or equal to the invoice's due sum "
                        f"({invoice.due_sum:.2f})."
                    ]
                }
            )

    client = invoice.client if invoice else prepayment[0]
    method = DeliveryMethod.EMAIL_ONLY if method is None else method
    email = email if email is not None else client.email
    phone = phone if phone is not None else _client_phone(client)
    address_errors = {}
    if method in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.EMAIL_ONLY) and not email:
        address_errors["email"] = ["An email address is needed to send the link by email."]
    if method in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.SMS_ONLY) and not phone:
        address_errors["phone"] = ["A phone number is needed to send the link by SMS."]
    if address_errors:
        raise Invalid({"payment_link_data": address_errors})

    return LinkRequest(
        amount=amount,
        creator=creator,
        department=department,
        invoice=invoice,
        prepayment_client=prepayment[0] if prepayment else None,
        prepayment_department=prepayment[1] if prepayment else None,
        prepayment_description=prepayment[2] if prepayment else "",
        duration=DEFAULT_DURATION if duration is None else duration,
        delivery_method=method,
        email=email or "",
        phone=phone or "",
        description=description or "",
        return_url=return_url or "",
        tokenize=tokenize or "",
        recurring_model=recurring_model or "",
    )


def _unpayable(invoice: Invoice) -> str:
    if invoice.credit_note:
        return "A credit note cannot be paid."
    if invoice.status != InvoiceStatus.FINALIZED:
        return "Only finalized invoices can be paid."
    return ""


def _client_phone(client: Client) -> str:
    numbers = sorted(client.phone_numbers.all(), key=lambda n: (not n.preferred_reminders, n.pk))
    return numbers[0].phone_number if numbers else ""


def _prepayment(installation: Installation, data: dict, errors: dict):
    value = data.get("prepayment_data")
    if value is None:
        return None
    if not isinstance(value, dict):
        errors["prepayment_data"] = [_expected_dict(value)]
        return None
    own: dict = {}
    client = _pk(installation, value, "client_id", Client, own, required=True)
    department = _pk(installation, value, "department_id", Department, own, required=True)
    description = _text(value, "description", own, max_length=255)
    if own:
        errors["prepayment_data"] = own
        return None
    return client, department, description or ""


def _amount(data: dict, errors: dict) -> Decimal:
    raw = data.get("amount")
    if raw is None:
        errors["amount"] = [REQUIRED if "amount" not in data else "This field may not be null."]
        return Decimal(0)
    try:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise InvalidOperation
        amount = Decimal(str(raw).strip())
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors["amount"] = ["A valid number is required."]
        return Decimal(0)
    _, digits, exponent = amount.as_tuple()
    decimals = max(0, -int(exponent))
    whole = len(digits) - decimals if int(exponent) < 0 else len(digits) + int(exponent)
    if decimals > 2:
        errors["amount"] = ["Ensure that there are no more than 2 decimal places."]
    elif whole > 10:
        errors["amount"] = [
            "Ensure that there are no more than 10 digits before the decimal point."
        ]
    elif amount <= 0:
        errors["amount"] = ["Ensure this value is greater than 0."]
    return amount


def _integer(
    data: dict,
    name: str,
    errors: dict,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    if name not in data:
        if required:
            errors[name] = [REQUIRED]
        return None
    raw = data[name]
    if raw is None:
        errors[name] = ["This field may not be null."]
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        errors[name] = ["A valid integer is required."]
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[name] = ["A valid integer is required."]
        return None
    if minimum is not None and value < minimum:
        errors[name] = [f"Ensure this value is greater than or equal to {minimum}."]
    elif maximum is not None and value > maximum:
        errors[name] = [f"Ensure this value is less than or equal to {maximum}."]
    return value


def _choice(data: dict, name: str, choices: tuple, errors: dict):
    if name not in data:
        return None
    raw = data[name]
    for choice in choices:
        if raw == choice or (
            isinstance(choice, int) and isinstance(raw, str) and raw == str(choice)
        ):
            return choice
    errors[name] = [f'"{raw}" is not a valid choice.']
    return None


def _text(data: dict, name: str, errors: dict, blank: bool = True, max_length: int = 254):
    if name not in data:
        return None
    raw = data[name]
    if raw is None:
        if blank:
            return ""
        errors[name] = ["This field may not be null."]
        return None
    if not isinstance(raw, str):
        errors[name] = ["Not a valid string."]
        return None
    value = raw.strip()
    if not value and not blank:
        errors[name] = ["This field may not be blank."]
        return None
    if len(value) > max_length:
        errors[name] = [f"Ensure this field has no more than {max_length} characters."]
        return None
    return value


def _hyperlink(installation, data, name, resource, model, errors, required) -> Model | None:
    if name not in data or data[name] is None:
        if required:
            errors[name] = [REQUIRED if name not in data else "This field may not be null."]
        return None
    raw = data[name]
    if not isinstance(raw, str):
        errors[name] = [f"Incorrect type. Expected URL string, received {type(raw).__name__}."]
        return None
    match = API_PATH.search(urlsplit(raw).path)
    if match is None:
        errors[name] = ["Invalid hyperlink - No URL match."]
        return None
    if match["resource"] != resource or int(match["provet_id"]) != installation.provet_id:
        errors[name] = ["Invalid hyperlink - Incorrect URL match."]
        return None
    found = _in_installation(installation, model).filter(pk=int(match["pk"])).first()
    if found is None:
        errors[name] = ["Invalid hyperlink - Object does not exist."]
    return found


def _pk(installation, data: dict, name: str, model, errors: dict, required: bool = False):
    if name not in data or data[name] is None:
        if required:
            errors[name] = [REQUIRED if name not in data else "This field may not be null."]
        return None
    raw = data[name]
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
        errors[name] = [f"Incorrect type. Expected pk value, received {type(raw).__name__}."]
        return None
    found = _in_installation(installation, model).filter(pk=int(raw)).first()
    if found is None:
        errors[name] = [f'Invalid pk "{raw}" - object does not exist.']
    return found


def _in_installation(installation: Installation, model):
    return model.objects.filter(installation=installation)


def _expected_dict(value: object) -> str:
    return f"Invalid data. Expected a dictionary, but got {type(value).__name__}."


def _valid_email(value: str) -> bool:
    try:
        EmailValidator()(value)
    except ValidationError:
        return False
    return True


def _valid_url(value: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        return False
    return True

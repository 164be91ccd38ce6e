"""What the API answers (links, invoices, departments, clients) and the shape of what it takes.

The shapes only: every rule about a link's fields is the link forms' (paylinks/forms.py), which
the API's create goes through as the pages' does.
"""

from typing import Any

from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics import formats
from paylinks.models import (
    DeliveryMethod,
    DeliveryStatus,
    InvoiceStatus,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
    RecurringModel,
    Tokenize,
)
from paylinks.words import delivery_words, status_words


def _absolute(context: dict, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class DepartmentRefSerializer(serializers.Serializer):
    provet_id = serializers.IntegerField()
    name = serializers.CharField()


class InvoiceRefSerializer(serializers.Serializer):
    provet_id = serializers.IntegerField()
    number = serializers.CharField()


class StatusWordsSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The status as the link page says it.")
    tone = serializers.ChoiceField(
        choices=["waiting", "good", "bad", "neutral"],
        help_text="waiting (may still be paid), good (paid), bad (failed), neutral (over).",
    )


class EventSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="created_at")
    kind = serializers.ChoiceField(choices=LinkEvent.Kind.choices)
    kind_label = serializers.CharField(source="get_kind_display")
    source = serializers.ChoiceField(choices=LinkEvent.Source.choices)
    user = serializers.SerializerMethodField()
    old_value = serializers.CharField()
    new_value = serializers.CharField()
    message = serializers.CharField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_user(self, event: LinkEvent) -> str | None:
        return _person(event.user)


def _person(user) -> str | None:
    return formats.person(user) if user is not None else None


class LinkSerializer(serializers.Serializer):
    """A payment link: what it asks for, where the payer pays, its statuses and its timeline."""

    code = serializers.UUIDField(help_text="The link's id in PayLinks.")
    url = serializers.SerializerMethodField(help_text="This link in the API.")
    page_url = serializers.SerializerMethodField(help_text="The link's page in PayLinks.")
    practice = serializers.UUIDField(source="practice.code")
    kind = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()
    client_provet_id = serializers.SerializerMethodField()
    client_name = serializers.CharField()
    department = DepartmentRefSerializer()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    delivery_method = serializers.ChoiceField(choices=DeliveryMethod.choices)
    delivery_method_label = serializers.CharField(source="get_delivery_method_display")
    email = serializers.CharField()
    phone = serializers.CharField()
    description = serializers.CharField()
    duration_minutes = serializers.IntegerField()
    return_url = serializers.CharField()
    tokenize = serializers.ChoiceField(choices=Tokenize.choices)
    recurring_model = serializers.ChoiceField(choices=RecurringModel.choices)
    consent_recorded_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    state = serializers.ChoiceField(
        choices=PaymentLink.State.choices,
        help_text="PayLinks' own: creating, active, unknown (being checked), failed, closed.",
    )
    payment_status = serializers.ChoiceField(
        choices=PaymentStatus.choices,
        allow_null=True,
        help_text="Provet's code: 1 pending, 2 failed, 3 expired, 4 aborted, 5 accepted (paid).",
    )
    payment_status_label = serializers.SerializerMethodField()
    delivery_status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        allow_null=True,
        help_text="Provet's code: 1 not sent, 2 sent, 3 failed.",
    )
    delivery_status_label = serializers.SerializerMethodField()
    status_words = serializers.SerializerMethodField()
    delivery_words = serializers.SerializerMethodField()
    payer_url = serializers.CharField(
        help_text="Where the client pays; empty until Provet made it."
    )
    external_id = serializers.CharField(help_text="Provet's id of the payment link.")
    postransaction_id = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    checked_at = serializers.DateTimeField(
        allow_null=True, help_text="When PayLinks last read the link from Provet."
    )
    paid_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    needs_review = serializers.BooleanField(
        help_text="Several Provet links could be this one: a manager decides on its page."
    )
    imported = serializers.BooleanField(help_text="Made in Provet itself, found on the invoice.")
    replaces = serializers.SerializerMethodField()
    replaced_by = serializers.SerializerMethodField()
    can_send_again = serializers.BooleanField()
    can_cancel = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()

    def get_url(self, link: PaymentLink) -> str:
        return _absolute(self.context, reverse("api:link", kwargs={"code": link.code}))

    def get_page_url(self, link: PaymentLink) -> str:
        return _absolute(self.context, reverse("paylinks:link", kwargs={"code": link.code}))

    @extend_schema_field(serializers.ChoiceField(choices=["invoice", "prepayment"]))
    def get_kind(self, link: PaymentLink) -> str:
        return "invoice" if link.invoice_id else "prepayment"

    @extend_schema_field(InvoiceRefSerializer(allow_null=True))
    def get_invoice(self, link: PaymentLink) -> dict | None:
        if link.invoice is None:
            return None
        return {"provet_id": link.invoice.provet_id, "number": str(link.invoice)}

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_client_provet_id(self, link: PaymentLink) -> int | None:
        if link.invoice is not None:
            return link.invoice.client_provet_id
        return link.prepayment.client_provet_id if link.prepayment else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, link: PaymentLink) -> str | None:
        return _person(link.created_by)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_payment_status_label(self, link: PaymentLink) -> str | None:
        return link.get_payment_status_display() if link.payment_status is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_delivery_status_label(self, link: PaymentLink) -> str | None:
        return link.get_delivery_status_display() if link.delivery_status is not None else None

    @extend_schema_field(StatusWordsSerializer)
    def get_status_words(self, link: PaymentLink) -> dict:
        text, tone = status_words(link)
        return {"text": str(text), "tone": tone}

    def get_delivery_words(self, link: PaymentLink) -> str:
        return str(delivery_words(link))

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_replaces(self, link: PaymentLink) -> str | None:
        return str(link.replaces.code) if link.replaces_id and link.replaces else None

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_replaced_by(self, link: PaymentLink) -> str | None:
        """The live link made in this one's place (Send again, Replace)."""
        prefetched = getattr(link, "live_replacements", None)
        replacement = prefetched[0] if prefetched else None
        if prefetched is None:
            replacement = link.live_replacement()
        return str(replacement.code) if replacement is not None else None

    def get_can_cancel(self, link: PaymentLink) -> bool:
        return link.can_cancel

    @extend_schema_field(EventSerializer(many=True))
    def get_timeline(self, link: PaymentLink) -> list[dict[str, Any]]:
        return EventSerializer(link.events.all(), many=True).data


class LinkPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = LinkSerializer(many=True)


class InvoiceSerializer(serializers.Serializer):
    """An invoice as Provet has it now (search results are fresh from Provet too)."""

    provet_id = serializers.IntegerField()
    number = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="This invoice in the API.")
    status = serializers.ChoiceField(
        choices=InvoiceStatus.choices, help_text="Provet's code: only 3 (finalized) can be paid."
    )
    status_label = serializers.CharField(source="get_status_display")
    credit_note = serializers.BooleanField()
    client_provet_id = serializers.IntegerField(allow_null=True)
    client_name = serializers.CharField()
    client_email = serializers.CharField()
    client_phone = serializers.CharField()
    client_no_sms = serializers.BooleanField(help_text="The client asked not to get SMS.")
    client_no_email = serializers.BooleanField(help_text="The client asked not to get email.")
    department = DepartmentRefSerializer(allow_null=True)
    total_with_vat = serializers.DecimalField(max_digits=12, decimal_places=2)
    due_sum = serializers.DecimalField(max_digits=12, decimal_places=2)
    free_amount = serializers.SerializerMethodField()
    currency = serializers.CharField(source="practice.currency")
    invoice_date = serializers.DateField(allow_null=True)
    date_paid = serializers.DateField(allow_null=True)
    fetched_at = serializers.DateTimeField()
    problem = serializers.SerializerMethodField()

    def get_number(self, invoice) -> str:
        return str(invoice)

    def get_url(self, invoice) -> str:
        path = reverse("api:invoice", kwargs={"provet_id": invoice.provet_id})
        return _absolute(self.context, path)

    @extend_schema_field(
        serializers.DecimalField(
            max_digits=12,
            decimal_places=2,
            help_text="What a new link may ask for: the due sum less what the invoice's "
            "links waiting for payment ask for.",
        )
    )
    def get_free_amount(self, invoice) -> str:
        return f"{invoice.free_amount():.2f}"

    @extend_schema_field(
        serializers.CharField(help_text="Why no link can be made for it, or empty when one can.")
    )
    def get_problem(self, invoice) -> str:
        return invoice.link_problem()


class InvoiceDetailSerializer(InvoiceSerializer):
    open_links = serializers.SerializerMethodField()

    @extend_schema_field(LinkSerializer(many=True))
    def get_open_links(self, invoice) -> list[dict]:
        links = invoice.open_links().with_replaced().select_related(*LINK_RELATED)
        links = links.order_by("created_at")
        return LinkSerializer(with_link_extras(links), many=True, context=self.context).data


class DepartmentSerializer(serializers.Serializer):
    provet_id = serializers.IntegerField()
    name = serializers.CharField()
    allow_nhp_processing = serializers.BooleanField(
        help_text="Provet Pay is allowed: links can be made in this department."
    )
    synced_at = serializers.DateTimeField(allow_null=True)


class ClientSerializer(serializers.Serializer):
    provet_id = serializers.IntegerField(source="id")
    name = serializers.CharField()
    firstname = serializers.CharField()
    lastname = serializers.CharField()
    organization_name = serializers.CharField()
    email = serializers.CharField()
    no_sms = serializers.BooleanField()
    no_email = serializers.BooleanField()


class ProblemSerializer(serializers.Serializer):
    """An error, as RFC 9457 application/problem+json."""

    type = serializers.CharField(
        help_text="`urn:paylinks:problem:<name>` for PayLinks' own, `about:blank` otherwise."
    )
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field errors, by field name (`non_field_errors` for the request as a whole).",
    )
    replaced_by = serializers.UUIDField(
        required=False, help_text="already-replaced: the link made in this one's place."
    )


DELIVERY_METHODS = (
    "Provet's code: 0 don't send (hand over the payer URL or its QR code), 1 SMS and email, "
    "2 email only, 3 SMS only."
)


# Link options, as the link forms name and check them (paylinks/forms.py).
class LinkOptionsSerializer(serializers.Serializer):
    amount = serializers.CharField(
        required=False,
        max_length=40,
        help_text="Decimal with a point or a comma, at most two decimals: `120.50`, `120,50`. "
        "For an invoice it defaults to what is free (the due sum less what its links waiting "
        "for payment ask for), and can never be more.",
    )
    delivery_method = serializers.ChoiceField(
        choices=DeliveryMethod.choices, required=False, help_text=DELIVERY_METHODS
    )
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="Read in the practice's country when it has no country code; SMS needs a "
        "mobile number.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, help_text="Shown to the client."
    )
    duration_minutes = serializers.IntegerField(
        required=False,
        help_text="How long the link can be paid: 5 to 43200 minutes; the practice's default "
        "when left out.",
    )
    return_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2500,
        help_text="https:// address the payer returns to; the practice's default when left out.",
    )
    tokenize = serializers.ChoiceField(
        choices=Tokenize.choices,
        required=False,
        help_text="Card saving: empty (off), `ask` (the client decides), `yes` (needs `consent`).",
    )
    recurring_model = serializers.ChoiceField(
        choices=RecurringModel.choices,
        required=False,
        help_text="What a saved card is for: `one-off` or `subscription`.",
    )
    consent = serializers.BooleanField(
        required=False, help_text="The client consented to saving their card (tokenize `yes`)."
    )

    def validate(self, attrs: dict) -> dict:
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [_("There is no such field.")] for name in sorted(unknown)}
            )
        return attrs


class LinkCreateSerializer(LinkOptionsSerializer):
    """A new link: for an invoice (`invoice`), or a prepayment (`client` and `department`)."""

    practice = serializers.UUIDField(
        required=False, help_text="The practice; the caller's own when left out."
    )
    invoice = serializers.IntegerField(
        required=False, min_value=1, help_text="Provet's id of the invoice."
    )
    client = serializers.IntegerField(
        required=False, min_value=1, help_text="A prepayment's client: Provet's id."
    )
    department = serializers.IntegerField(
        required=False, min_value=1, help_text="A prepayment's department: Provet's id."
    )
    delivery_method = serializers.ChoiceField(
        choices=DeliveryMethod.choices, help_text=DELIVERY_METHODS
    )
    description = serializers.CharField(
        allow_blank=True, max_length=1000, help_text="Shown to the client."
    )
    replace = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="An invoice's link waiting for payment to make this one in place of: it is "
        "cancelled in Provet first.",
    )

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        errors: dict[str, list[str]] = {}
        if ("invoice" in attrs) == ("client" in attrs):
            errors["non_field_errors"] = [
                _(
                    "Give `invoice` for an invoice's link, or `client` and `department` for a "
                    "prepayment."
                )
            ]
        elif "invoice" in attrs:
            if "department" in attrs:
                errors["department"] = [_("An invoice's link is made in the invoice's department.")]
        elif attrs.get("replace"):
            errors["replace"] = [_("Only an invoice's link can be replaced.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


LINK_RELATED = ("practice", "invoice", "prepayment", "department", "created_by", "replaces")


def with_link_extras(links):
    """A queryset of links with what LinkSerializer reads, in a fixed number of queries."""
    return links.prefetch_related(
        Prefetch("events", queryset=LinkEvent.objects.select_related("user")),
        Prefetch(
            "replacements",
            queryset=PaymentLink.objects.live().order_by("created_at"),
            to_attr="live_replacements",
        ),
    )

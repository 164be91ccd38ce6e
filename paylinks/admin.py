import json
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinics.admin import in_practice_zone, times_in_practice_zone
from paylinks import event_sending
from paylinks.models import (
    ENDPOINT_SECRET_GRACE,
    DriftFinding,
    EventDelivery,
    EventEndpoint,
    EventType,
    Invoice,
    LinkEvent,
    OutgoingEvent,
    PaymentLink,
    Prepayment,
    WebhookDelivery,
    new_endpoint_secret,
)


class AuditTrail:
    """Seen in admin, never added, changed or deleted there, not even by a superuser, one at a
    time or in bulk: links and their events are the audit trail. Whoever needs to change a link
    uses the app's actions (check, cancel, send again), which record who did it."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # so admin offers no "Delete selected" action either


class ReadOnlyRecord:
    """A copy of what Provet or the app recorded: shown, never added by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@times_in_practice_zone(LinkEvent, lambda event: event.link.practice)
class LinkEventInline(AuditTrail, admin.TabularInline):
    model = LinkEvent
    extra = 0
    can_delete = False
    # The trail is only read: every field shown is read-only.
    fields = readonly_fields = (
        "created_at",
        "kind",
        "reason",
        "source",
        "user",
        "old_value",
        "new_value",
        "message",
        "announces",
    )


@admin.register(PaymentLink)
@times_in_practice_zone(PaymentLink, lambda link: link.practice)
class PaymentLinkAdmin(AuditTrail, admin.ModelAdmin):
    list_display = [
        "code",
        "practice",
        "client_name",
        "amount",
        "currency",
        "state",
        "payment_status",
        "delivery_status",
        "created_at",
    ]
    list_filter = ["practice", "state", "payment_status", "delivery_status", "delivery_method"]
    search_fields = ["code", "external_id", "invoice__number", "email", "client_name", "phone"]
    date_hierarchy = "created_at"
    list_select_related = ["practice"]
    inlines = [LinkEventInline]
    readonly_fields = [f.name for f in PaymentLink._meta.fields]


@admin.register(LinkEvent)
@times_in_practice_zone(LinkEvent, lambda event: event.link.practice)
class LinkEventAdmin(AuditTrail, admin.ModelAdmin):
    list_display = ["created_at", "link", "kind", "source", "user", "old_value", "new_value"]
    list_filter = ["kind", "reason", "source", "announces"]
    search_fields = ["link__code", "link__external_id", "message"]
    list_select_related = ["link", "link__practice", "user"]
    readonly_fields = [f.name for f in LinkEvent._meta.fields]


@admin.register(Invoice)
@times_in_practice_zone(Invoice, lambda invoice: invoice.practice)
class InvoiceAdmin(ReadOnlyRecord, admin.ModelAdmin):
    list_display = ["number", "practice", "client_name", "status", "total_with_vat", "due_sum"]
    list_filter = ["practice", "status", "credit_note"]
    search_fields = ["number", "client_name", "client_email", "provet_id"]
    readonly_fields = [f.name for f in Invoice._meta.fields]


@admin.register(Prepayment)
@times_in_practice_zone(Prepayment, lambda prepayment: prepayment.practice)
class PrepaymentAdmin(ReadOnlyRecord, admin.ModelAdmin):
    list_display = ["client_name", "practice", "department", "description", "created_at"]
    list_filter = ["practice"]
    search_fields = ["client_name", "description"]
    readonly_fields = [f.name for f in Prepayment._meta.fields]


@admin.register(WebhookDelivery)
@times_in_practice_zone(WebhookDelivery, lambda delivery: delivery.practice)
class WebhookDeliveryAdmin(ReadOnlyRecord, admin.ModelAdmin):
    list_display = ["received_at", "practice", "trigger", "invoice_provet_id", "links_made_due"]
    list_display += ["error"]
    list_filter = ["practice", "trigger"]
    search_fields = ["body", "invoice_provet_id"]
    list_select_related = ["practice"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]


class OpenListFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(DriftFinding)
@times_in_practice_zone(DriftFinding, lambda finding: finding.practice)
class DriftFindingAdmin(ReadOnlyRecord, admin.ModelAdmin):
    """What the nightly drift check found (paylinks/drift.py); it resolves them itself."""

    list_display = ["found_at", "practice", "kind", "message", "link", "resolved_at"]
    list_filter = [OpenListFilter, "practice", "kind"]
    search_fields = ["message", "invoice__number"]
    list_select_related = ["practice", "link", "link__invoice"]
    readonly_fields = [f.name for f in DriftFinding._meta.fields]


# Outgoing events (paylinks/outbox.py, paylinks/event_sending.py): endpoints are set up here;
# events and deliveries are a record, shown and never changed, except that a delivery can be
# sent again.


class EventEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=EventType.values,
        help_text=_("The events sent to this URL."),
    )

    class Meta:
        model = EventEndpoint
        fields = ["practice", "url", "description", "events", "is_active"]
        field_classes = {"url": partial(forms.URLField, assume_scheme="https")}

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            event_sending.check_url(url)
        except event_sending.UnsafeDestination as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return url


@admin.register(EventEndpoint)
@times_in_practice_zone(EventEndpoint, lambda endpoint: endpoint.practice)
class EventEndpointAdmin(admin.ModelAdmin):
    form = EventEndpointForm
    list_display = ["url", "practice", "event_types", "is_active", "created_at"]
    list_filter = ["practice", "is_active"]
    search_fields = ["url", "description"]
    list_select_related = ["practice"]
    readonly_fields = ["signing_secret", "deliveries", "created_at"]
    actions = ["rotate_secret"]
    fieldsets = [
        (None, {"fields": ["practice", "url", "description", "is_active"]}),
        (_("Events"), {"fields": ["events"]}),
        (
            _("Signature"),
            {
                "fields": ["signing_secret", "deliveries", "created_at"],
                "description": _(
                    "Each request is signed with this endpoint's secret (PayLinks-Signature). "
                    "The secret is shown once, when the endpoint is made or its secret rotated."
                ),
            },
        ),
    ]

    @admin.display(description=_("Events"))
    def event_types(self, endpoint: EventEndpoint) -> str:
        return ", ".join(endpoint.events) or "—"

    @admin.display(description=_("Signing secret"))
    def signing_secret(self, endpoint: EventEndpoint) -> str:
        if not endpoint.pk:
            return str(_("Made when the endpoint is saved, and shown once then."))
        until = endpoint.previous_secret_until
        if endpoint.previous_secret_encrypted and until and until > timezone.now():
            return gettext("Stored encrypted. The previous one also signs until %(until)s.") % {
                "until": in_practice_zone(until, endpoint.practice)
            }
        return str(_("Stored encrypted; not shown again."))

    @admin.display(description=_("Deliveries"))
    def deliveries(self, endpoint: EventEndpoint) -> str:
        if not endpoint.pk:
            return "—"
        url = (
            reverse("admin:paylinks_eventdelivery_changelist")
            + f"?endpoint__id__exact={endpoint.pk}"
        )
        failed = endpoint.deliveries.filter(status=EventDelivery.Status.FAILED).count()
        return format_html(
            '<a href="{}">{} in all</a>, {} failed', url, endpoint.deliveries.count(), failed
        )

    def save_model(self, request: HttpRequest, obj: EventEndpoint, form, change: bool) -> None:
        secret = ""
        if not change:
            secret = new_endpoint_secret()
            obj.secret = secret
        super().save_model(request, obj, form, change)
        if secret:
            self._show_once(request, obj, secret)

    @admin.action(description=_("Rotate secret"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[EventEndpoint]) -> None:
        for endpoint in queryset:
            self._show_once(request, endpoint, endpoint.rotate_secret())
        hours = int(ENDPOINT_SECRET_GRACE.total_seconds() // 3600)
        self.message_user(
            request,
            f"Requests are signed with the old secret too for {hours} hours, while the "
            "receiving systems change over.",
        )

    def _show_once(self, request: HttpRequest, endpoint: EventEndpoint, secret: str) -> None:
        self.message_user(
            request,
            f"Signing secret for {endpoint.url}: {secret} Copy it into the receiving system "
            "now: it is not shown again.",
            messages.WARNING,
        )


@times_in_practice_zone(EventDelivery, lambda delivery: delivery.event.practice)
class EventDeliveryInline(AuditTrail, admin.TabularInline):
    model = EventDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )


@admin.register(OutgoingEvent)
@times_in_practice_zone(OutgoingEvent, lambda event: event.practice)
class OutgoingEventAdmin(AuditTrail, admin.ModelAdmin):
    list_display = ["created_at", "type", "link", "practice", "id"]
    list_filter = ["type", "practice"]
    search_fields = ["id", "link__code"]
    list_select_related = ["link", "practice"]
    date_hierarchy = "created_at"
    fields = readonly_fields = ("id", "type", "practice", "link", "created_at", "body")
    inlines = [EventDeliveryInline]

    @admin.display(description=_("Body"))
    def body(self, event: OutgoingEvent) -> str:
        document = json.loads(event_sending.body_of(event))
        return format_html("<pre>{}</pre>", json.dumps(document, indent=2, ensure_ascii=False))


@admin.register(EventDelivery)
@times_in_practice_zone(EventDelivery, lambda delivery: delivery.endpoint.practice)
class EventDeliveryAdmin(AuditTrail, admin.ModelAdmin):
    list_display = ["created_at", "event_type", "link", "endpoint", "status", "attempts"]
    list_display += ["last_status_code", "last_error", "next_attempt_at"]
    list_filter = ["status", "event__type", "endpoint__practice", "endpoint"]
    search_fields = ["event__id", "event__link__code", "endpoint__url"]
    list_select_related = ["event", "event__link", "endpoint", "endpoint__practice"]
    readonly_fields = [f.name for f in EventDelivery._meta.fields]
    actions = ["send_again"]

    @admin.display(description=_("Event"), ordering="event__type")
    def event_type(self, delivery: EventDelivery) -> str:
        return delivery.event.type

    @admin.display(description=_("Link"))
    def link(self, delivery: EventDelivery) -> str:
        return str(delivery.event.link.code)

    def has_send_again_permission(self, request: HttpRequest) -> bool:
        # Deliveries are never edited, but whoever may change them may send them again.
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description=_("Send again"), permissions=["send_again"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        count = 0
        for delivery in queryset:
            event_sending.send_again(delivery)
            count += 1
        self.message_user(
            request,
            f"{count} deliveries queued to be sent again; each is retried for another day.",
            messages.SUCCESS,
        )

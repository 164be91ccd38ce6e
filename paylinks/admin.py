from django.contrib import admin

from paylinks.models import (
    DriftFinding,
    Invoice,
    LinkEvent,
    PaymentLink,
    Prepayment,
    WebhookDelivery,
)


class LinkEventInline(admin.TabularInline):
    model = LinkEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "source", "user", "old_value", "new_value", "message"]
    readonly_fields = ["created_at", "kind", "source", "user", "old_value", "new_value", "message"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PaymentLink)
class PaymentLinkAdmin(admin.ModelAdmin):
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
    # Statuses come from Provet and move only through PaymentLink's own methods.
    readonly_fields = [
        "code",
        "practice",
        "invoice",
        "prepayment",
        "department",
        "amount",
        "currency",
        "state",
        "payment_status",
        "delivery_status",
        "postransaction_id",
        "postransaction_url",
        "external_id",
        "payer_url",
        "expires_at",
        "idempotency_key",
        "next_check_at",
        "checked_at",
        "paid_at",
        "cancelled_at",
        "created_by",
        "created_at",
        "consent_recorded_by",
        "consent_recorded_at",
        "replaces",
        "imported",
        "last_error",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # links are made through Provet, on the reception pages or the API


@admin.register(LinkEvent)
class LinkEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "link", "kind", "source", "user", "old_value", "new_value"]
    list_filter = ["kind", "source"]
    search_fields = ["link__code", "link__external_id", "message"]
    list_select_related = ["link", "user"]
    readonly_fields = [f.name for f in LinkEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # append-only


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "practice", "client_name", "status", "total_with_vat", "due_sum"]
    list_filter = ["practice", "status", "credit_note"]
    search_fields = ["number", "client_name", "client_email", "provet_id"]
    readonly_fields = [f.name for f in Invoice._meta.fields]


@admin.register(Prepayment)
class PrepaymentAdmin(admin.ModelAdmin):
    list_display = ["client_name", "practice", "department", "description", "created_at"]
    list_filter = ["practice"]
    search_fields = ["client_name", "description"]
    readonly_fields = [f.name for f in Prepayment._meta.fields]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "practice", "trigger", "invoice_provet_id", "links_made_due"]
    list_display += ["error"]
    list_filter = ["practice", "trigger"]
    search_fields = ["body", "invoice_provet_id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


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
class DriftFindingAdmin(admin.ModelAdmin):
    """What the nightly drift check found (paylinks/drift.py); it resolves them itself."""

    list_display = ["found_at", "practice", "kind", "message", "link", "resolved_at"]
    list_filter = [OpenListFilter, "practice", "kind"]
    search_fields = ["message", "invoice__number"]
    list_select_related = ["practice", "link", "link__invoice"]
    readonly_fields = [f.name for f in DriftFinding._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

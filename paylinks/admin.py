from django.contrib import admin

from paylinks.models import (
    DriftFinding,
    Invoice,
    LinkEvent,
    PaymentLink,
    Prepayment,
    WebhookDelivery,
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


class LinkEventInline(AuditTrail, admin.TabularInline):
    model = LinkEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "source", "user", "old_value", "new_value", "message"]
    readonly_fields = ["created_at", "kind", "source", "user", "old_value", "new_value", "message"]


@admin.register(PaymentLink)
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
class LinkEventAdmin(AuditTrail, admin.ModelAdmin):
    list_display = ["created_at", "link", "kind", "source", "user", "old_value", "new_value"]
    list_filter = ["kind", "source"]
    search_fields = ["link__code", "link__external_id", "message"]
    list_select_related = ["link", "user"]
    readonly_fields = [f.name for f in LinkEvent._meta.fields]


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

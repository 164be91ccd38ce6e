from functools import partial

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.models import (
    WEBHOOK_SECRET_GRACE,
    Department,
    Membership,
    Practice,
    webhook_path,
)
from clinics.provet import ProvetError
from clinics.sync import explain, sync_departments, try_connection

KEEP = _("Write-only: leave blank to keep what is stored.")


class PracticeForm(forms.ModelForm):
    """Credentials can be set or replaced here, never read back."""

    client_secret = forms.CharField(
        label=_("OAuth client secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=KEEP,
    )
    api_token = forms.CharField(
        label=_("Legacy API token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=KEEP,
    )

    class Meta:
        model = Practice
        field_classes = {
            name: partial(forms.URLField, assume_scheme="https")
            for name in ["base_url", "provet_user_url", "default_return_url"]
        }
        fields = [
            "name",
            "is_active",
            "domain",
            "base_url",
            "provet_id",
            "provet_user_url",
            "auth_scheme",
            "client_id",
            "currency",
            "country",
            "timezone",
            "default_duration_minutes",
            "default_return_url",
            "rate_budget_per_minute",
        ]

    def clean(self):
        cleaned = super().clean()
        scheme = cleaned.get("auth_scheme")
        instance = self.instance
        if scheme == Practice.AuthScheme.OAUTH2:
            if not cleaned.get("client_id"):
                self.add_error("client_id", _("OAuth2 needs the client id from Provet support."))
            if not cleaned.get("client_secret") and not instance.client_secret_encrypted:
                self.add_error("client_secret", _("OAuth2 needs the client secret."))
        elif not cleaned.get("api_token") and not instance.api_token_encrypted:
            self.add_error("api_token", _("Legacy authentication needs the API token."))
        return cleaned

    def save(self, commit=True):
        practice = super().save(commit=False)
        if self.cleaned_data.get("client_secret"):
            practice.client_secret = self.cleaned_data["client_secret"]
        if self.cleaned_data.get("api_token"):
            practice.api_token = self.cleaned_data["api_token"]
        if commit:
            practice.save()
        return practice


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0
    fields = ["name", "provet_id", "allow_nhp_processing", "synced_at"]
    readonly_fields = ["name", "provet_id", "allow_nhp_processing", "synced_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin):
    form = PracticeForm
    list_display = ["name", "provet_id", "domain_or_url", "auth_scheme", "currency", "is_active"]
    list_filter = ["is_active", "auth_scheme", "currency"]
    search_fields = ["name", "domain", "base_url", "provet_id"]
    readonly_fields = [
        "code",
        "credentials_stored",
        "paused_until",
        "connection_problem",
        "webhook_url",
        "previous_webhook_url",
        "created_at",
    ]
    inlines = [DepartmentInline, MembershipInline]
    actions = ["test_connection", "sync_departments_action", "rotate_webhook_secret"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "is_active", "code", "connection_problem", "paused_until"]},
        ),
        (
            _("Provet Cloud installation"),
            {"fields": ["domain", "base_url", "provet_id", "provet_user_url"]},
        ),
        (
            _("Credentials"),
            {
                "fields": [
                    "auth_scheme",
                    "client_id",
                    "client_secret",
                    "api_token",
                    "credentials_stored",
                ],
                "description": _("Stored encrypted; never shown again once saved."),
            },
        ),
        (
            _("Payment links"),
            {
                "fields": [
                    "currency",
                    "country",
                    "timezone",
                    "default_duration_minutes",
                    "default_return_url",
                    "rate_budget_per_minute",
                ]
            },
        ),
        (
            _("Provet webhooks"),
            {
                "fields": ["webhook_url", "previous_webhook_url"],
                "description": _(
                    "In Provet's webhook settings, add this address for the triggers "
                    "'Invoice payment' and 'Unallocated payment' (form or JSON)."
                ),
            },
        ),
        (None, {"fields": ["created_at"]}),
    ]

    @admin.display(description=_("Provet Cloud"))
    def domain_or_url(self, practice: Practice) -> str:
        return practice.domain or practice.base_url

    @admin.display(description=_("Webhook URL"))
    def webhook_url(self, practice: Practice) -> str:
        if not practice.pk:
            return str(_("Shown once the practice is saved."))
        return f"https://<this PayLinks address>{webhook_path(practice.webhook_secret)}"

    @admin.display(description=_("Previous webhook URL"))
    def previous_webhook_url(self, practice: Practice) -> str:
        until = practice.previous_webhook_secret_until
        if not practice.previous_webhook_secret or until is None or until <= timezone.now():
            return "—"
        path = webhook_path(practice.previous_webhook_secret)
        return f"https://<this PayLinks address>{path}, accepted until {until:%Y-%m-%d %H:%M} UTC"

    @admin.display(description=_("Stored credentials"))
    def credentials_stored(self, practice: Practice) -> str:
        parts = []
        if practice.client_secret_encrypted:
            parts.append(str(_("client secret")))
        if practice.api_token_encrypted:
            parts.append(str(_("API token")))
        return ", ".join(parts) if parts else str(_("none"))

    @admin.action(description=_("Test connection"))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Practice]) -> None:
        for practice in queryset:
            report = try_connection(practice)
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, f"{practice}: {report.message}", level)

    @admin.action(description=_("Rotate webhook secret"))
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Practice]) -> None:
        for practice in queryset:
            practice.rotate_webhook_secret()
            self.message_user(
                request,
                f"{practice}: a new webhook address is on its page; put it in Provet's webhook "
                f"settings. The old one is accepted for {WEBHOOK_SECRET_GRACE.days} more days.",
                messages.SUCCESS,
            )

    @admin.action(description=_("Sync departments"))
    def sync_departments_action(self, request: HttpRequest, queryset: QuerySet[Practice]) -> None:
        for practice in queryset:
            try:
                result = sync_departments(practice)
            except ProvetError as error:
                self.message_user(request, f"{practice}: {explain(error)}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{practice}: {result.created} departments added, {result.updated} updated.",
                messages.SUCCESS,
            )


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "practice", "provet_id", "allow_nhp_processing", "synced_at"]
    list_filter = ["practice", "allow_nhp_processing"]
    search_fields = ["name", "provet_id"]
    readonly_fields = ["practice", "provet_id", "synced_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "practice", "role"]
    list_filter = ["practice", "role"]
    search_fields = ["user__username", "user__email", "practice__name"]
    autocomplete_fields = ["user", "practice"]

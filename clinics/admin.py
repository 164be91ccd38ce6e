import datetime as dt
import zoneinfo
from collections.abc import Callable
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import dateformat, timezone
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from phonenumbers.geodata.locale import LOCALE_DATA

from clinics.models import (
    WEBHOOK_SECRET_GRACE,
    Department,
    Membership,
    Practice,
    Weekday,
    webhook_path,
)
from clinics.provet import ProvetError
from clinics.provet.errors import explain
from clinics.sync import sync_departments, try_connection

KEEP = _("Write-only: leave blank to keep what is stored.")

# The currencies Provet Pay's Nordic and UK installations invoice in (ISO 4217).
CURRENCIES = [
    ("EUR", _("EUR – euro")),
    ("GBP", _("GBP – pound sterling")),
    ("SEK", _("SEK – Swedish krona")),
    ("NOK", _("NOK – Norwegian krone")),
    ("DKK", _("DKK – Danish krone")),
    ("ISK", _("ISK – Icelandic króna")),
    ("CHF", _("CHF – Swiss franc")),
    ("PLN", _("PLN – Polish złoty")),
    ("USD", _("USD – US dollar")),
]


def country_choices() -> list[tuple[str, str]]:
    """ISO 3166 alpha-2 countries, named in the admin's language where phonenumbers knows the
    name (its region names), else in English."""
    language = (get_language() or "en").split("-")[0]
    named = [(code, _country_name(names, language)) for code, names in LOCALE_DATA.items()]
    return sorted(((code, f"{name} ({code})") for code, name in named), key=lambda c: c[1])


def _country_name(names: dict[str, str], language: str) -> str:
    name = names.get(language) or names.get("en") or ""
    while name.startswith("*"):  # "same as the name in that language"
        name = names.get(name[1:], "")
    return name or names.get("aa", "")


def timezone_choices() -> list[tuple[str, str]]:
    zones = sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")
    return [(name, name.replace("_", " ")) for name in zones]


def with_current(choices: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """A stored value no longer on the list still shows as chosen, rather than silently as the
    first choice."""
    if value and value not in {code for code, _label in choices}:
        return [(value, value), *choices]
    return choices


def in_practice_zone(moment: dt.datetime | None, practice: Practice | None) -> str:
    """A moment as the practice's staff read it: in its time zone, with the zone's name."""
    if moment is None:
        return "—"
    zone = practice.zone if practice is not None else zoneinfo.ZoneInfo("UTC")
    return dateformat.format(moment.astimezone(zone), "Y-m-d H:i:s T")


def times_in_practice_zone(model: type[models.Model], practice_of: Callable):
    """Class decorator for a ModelAdmin or inline: the model's date-times are shown in the time
    zone of the practice `practice_of(obj)` names, in the list and on the page.

    Each DateTimeField named in list_display, fields or readonly_fields is swapped for a
    read-only `<name>_local` display of the same name and ordering."""
    moments = {f.name: f for f in model._meta.fields if isinstance(f, models.DateTimeField)}

    def display(field: models.DateTimeField):
        @admin.display(description=capfirst(field.verbose_name), ordering=field.name)
        def show(self, obj) -> str:
            return in_practice_zone(getattr(obj, field.name), practice_of(obj))

        return show

    def swap(names):
        return type(names)(f"{name}_local" if name in moments else name for name in names)

    def decorate(admin_class):
        for name, field in moments.items():
            setattr(admin_class, f"{name}_local", display(field))
        # An editable date-time shown read-only in its stead leaves the form.
        readonly = set(admin_class.readonly_fields or ())
        editable = [n for n in moments if n in readonly and moments[n].editable]
        if editable:
            admin_class.exclude = [*(admin_class.exclude or ()), *editable]
        for option in ("list_display", "fields", "readonly_fields"):
            names = getattr(admin_class, option, None)
            if names:
                setattr(admin_class, option, swap(names))
        if admin_class.fieldsets:
            admin_class.fieldsets = [
                (title, {**options, "fields": swap(options["fields"])})
                for title, options in admin_class.fieldsets
            ]
        return admin_class

    return decorate


class PracticeForm(forms.ModelForm):
    """Credentials can be set or replaced here, never read back."""

    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCIES)
    country = forms.ChoiceField(
        label=_("Country"),
        help_text=_("Phone numbers without a country code are read as this country's."),
    )
    timezone = forms.ChoiceField(label=_("Time zone"))
    follow_up_days = forms.TypedMultipleChoiceField(
        label=_("Opening days"),
        choices=Weekday.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Links are only sent again on these days, in the practice's time zone."),
    )
    # The addresses to give Provet, in full, to select and copy (read-only inputs rather than
    # disabled ones, which can't be selected). What is posted back is ignored.
    webhook_url = forms.CharField(
        label=_("Webhook URL"),
        required=False,
        widget=forms.TextInput(attrs={"size": 80, "readonly": True}),
    )
    previous_webhook_url = forms.CharField(
        label=_("Previous webhook URL"),
        required=False,
        widget=forms.TextInput(attrs={"size": 80, "readonly": True}),
    )
    # Where this PayLinks is served, from the request (PracticeAdmin.get_form).
    site_root = ""

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
            "auto_follow_up",
            "follow_up_delay_hours",
            "follow_up_days",
            "follow_up_opens_at",
            "follow_up_closes_at",
            "follow_up_max_sends",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        practice = self.instance
        self.fields["currency"].choices = with_current(CURRENCIES, practice.currency)
        self.fields["country"].choices = with_current(country_choices(), practice.country)
        self.fields["timezone"].choices = with_current(timezone_choices(), practice.timezone)
        self._show_webhook_urls(practice)

    def _show_webhook_urls(self, practice: Practice) -> None:
        current, previous = self.fields["webhook_url"], self.fields["previous_webhook_url"]
        if not practice.pk:
            current.help_text = _("Shown once the practice is saved.")
            previous.widget = forms.HiddenInput()
            return
        current.initial = self._absolute(webhook_path(practice.webhook_secret))
        until = practice.previous_webhook_secret_until
        if practice.previous_webhook_secret and until is not None and until > timezone.now():
            previous.initial = self._absolute(webhook_path(practice.previous_webhook_secret))
            previous.help_text = gettext("Still accepted until %(until)s.") % {
                "until": in_practice_zone(until, practice)
            }
        else:
            previous.widget = forms.HiddenInput()

    def _absolute(self, path: str) -> str:
        return self.site_root.rstrip("/") + path if self.site_root else path

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


@times_in_practice_zone(Department, lambda department: department.practice)
class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0
    fields = ["name", "provet_id", "allow_nhp_processing", "synced_at"]
    readonly_fields = ["name", "provet_id", "allow_nhp_processing", "synced_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


# Stacked, with plain selects: a tabular row's fields and select2's boxes have no label a
# screen reader can read (axe-core: tests/e2e/test_accessibility.py).
class MembershipInline(admin.StackedInline):
    model = Membership
    extra = 1


@admin.register(Practice)
@times_in_practice_zone(Practice, lambda practice: practice)
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
            _("Automatic follow-up"),
            {
                "fields": [
                    "auto_follow_up",
                    "follow_up_delay_hours",
                    "follow_up_days",
                    "follow_up_opens_at",
                    "follow_up_closes_at",
                    "follow_up_max_sends",
                ],
                "description": _(
                    "Off unless turned on. A link for an invoice that expired unpaid is sent "
                    "again the same way, once the delay has passed, only on opening days "
                    "between the opening and closing time (in the practice's time zone), and "
                    "never when the invoice has been paid, the client has opted out of the "
                    "channel, or someone has already sent it again. Only links that expire "
                    "after it is turned on are sent again."
                ),
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

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A class made for this request: the webhook addresses are shown on this host.
        return type(form.__name__, (form,), {"site_root": request.build_absolute_uri("/")})

    @admin.display(description=_("Provet Cloud"))
    def domain_or_url(self, practice: Practice) -> str:
        return practice.domain or practice.base_url

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
@times_in_practice_zone(Department, lambda department: department.practice)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "practice", "provet_id", "allow_nhp_processing", "synced_at"]
    list_filter = ["practice", "allow_nhp_processing"]
    search_fields = ["name", "provet_id"]
    list_select_related = ["practice"]
    readonly_fields = ["practice", "provet_id", "synced_at"]

    def has_add_permission(self, request) -> bool:
        return False  # departments come from Provet: "Sync departments" on the practice


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "practice", "role"]
    list_filter = ["practice", "role"]
    search_fields = ["user__username", "user__email", "practice__name"]

import datetime as dt
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics import crypto
from clinics.provet import LEGACY_TOKEN, OAUTH2, Connection, ProvetClient

MIN_LINK_MINUTES = 5
MAX_LINK_MINUTES = 30 * 24 * 60


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


# After a rotation the old webhook address keeps working this long, while Provet's webhook
# settings are changed to the new one.
WEBHOOK_SECRET_GRACE = dt.timedelta(days=7)


# Where Provet sends a practice's webhooks. paylinks serves it (paylinks/urls.py); the address is
# part of the practice's set-up, so it is defined here, with the secret that ends it.
WEBHOOK_ROUTE = "webhooks/provet/<str:secret>/"


def webhook_path(secret: str) -> str:
    return "/" + WEBHOOK_ROUTE.replace("<str:secret>", secret)


def midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The moment a day starts in a time zone: where every period and date filter begins."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone"), params={"value": value})


class Weekday(models.IntegerChoices):
    """ISO weekday numbers, as datetime.isoweekday() counts them."""

    MONDAY = 1, _("Monday")
    TUESDAY = 2, _("Tuesday")
    WEDNESDAY = 3, _("Wednesday")
    THURSDAY = 4, _("Thursday")
    FRIDAY = 5, _("Friday")
    SATURDAY = 6, _("Saturday")
    SUNDAY = 7, _("Sunday")


def working_days() -> list[int]:
    return [1, 2, 3, 4, 5]


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or any(day not in Weekday.values for day in value):
        raise ValidationError(_("Choose days of the week."))


# Automatic follow-up waits at least this long after a link expired, and at most a week: a link
# sent again weeks later reads as a mistake to the client.
FOLLOW_UP_MIN_DELAY_HOURS = 1
FOLLOW_UP_MAX_DELAY_HOURS = 7 * 24
FOLLOW_UP_MAX_SENDS = 5


class PracticeQuerySet(models.QuerySet["Practice"]):
    def for_user(self, user) -> "PracticeQuerySet":
        """The practices a person may see: their memberships, or all for a superuser."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user).distinct()

    def managed_by(self, user) -> "PracticeQuerySet":
        """The practices a person manages, as a manager or an admin (all, for a superuser):
        where they see the dashboard and decide which Provet link a link is."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        # One filter() call, so the managing membership must be this person's own.
        return self.filter(
            memberships__user=user, memberships__role__in=Membership.MANAGING_ROLES
        ).distinct()

    def for_webhook_secret(self, secret: str) -> "PracticeQuerySet":
        """The active practice whose webhook address this is: the current one, or the one
        before a rotation while its grace period lasts."""
        current = Q(webhook_secret=secret)
        previous = Q(
            previous_webhook_secret=secret, previous_webhook_secret_until__gt=timezone.now()
        )
        return self.filter(current | previous, is_active=True)

    def paused(self, now: dt.datetime | None = None) -> "PracticeQuerySet":
        """Practices whose background work waits on Provet now (Practice.pause)."""
        return self.filter(_paused(now))

    def unpaused(self, now: dt.datetime | None = None) -> "PracticeQuerySet":
        """Practices whose background work may ask Provet now."""
        return self.exclude(_paused(now))


def _paused(now: dt.datetime | None) -> Q:
    return Q(paused_until__gt=now or timezone.now())


class Practice(models.Model):
    """One Provet Cloud installation."""

    class AuthScheme(models.TextChoices):
        OAUTH2 = OAUTH2, _("OAuth2 client credentials")
        TOKEN = LEGACY_TOKEN, _("Legacy API token")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    domain = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Where the clinic opens Provet Cloud, e.g. provetcloud.com."),
    )
    base_url = models.URLField(
        blank=True,
        help_text=_(
            "Instead of a domain: the installation's full root URL, e.g. "
            "http://127.0.0.1:8000/sandbox/4/ for the sandbox."
        ),
    )
    provet_id = models.PositiveIntegerField(help_text=_("The number in the Provet Cloud URL."))
    auth_scheme = models.CharField(
        max_length=10, choices=AuthScheme.choices, default=AuthScheme.OAUTH2
    )
    client_id = models.CharField(_("OAuth client id"), max_length=200, blank=True)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    api_token_encrypted = models.TextField(blank=True, editable=False)
    country = models.CharField(
        max_length=2,
        default="FI",
        validators=[RegexValidator(r"^[A-Z]{2}$", _("Use a two-letter country code, e.g. FI."))],
        help_text=_("Phone numbers without a country code are read as this country's."),
    )
    currency = models.CharField(
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Use an ISO 4217 code, e.g. EUR."))],
    )
    timezone = models.CharField(
        max_length=64, default="Europe/Helsinki", validators=[validate_timezone]
    )
    provet_user_url = models.URLField(
        _("integration user URL"),
        blank=True,
        help_text=_("The Provet user that creates payment links, e.g. …/api/0.1/user/12/."),
    )
    default_return_url = models.URLField(max_length=2000, blank=True)
    default_duration_minutes = models.PositiveIntegerField(
        default=2 * 24 * 60,
        validators=[MinValueValidator(MIN_LINK_MINUTES), MaxValueValidator(MAX_LINK_MINUTES)],
        help_text=_("How long a new link stays payable."),
    )
    rate_budget_per_minute = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text=_(
            "Requests per rolling minute PayLinks may send to this installation, from all its "
            "processes together; staff pages may use the last fifth, background work not "
            "(Provet allows 250-300 per endpoint)."
        ),
    )
    webhook_secret = models.CharField(
        max_length=64, unique=True, default=new_webhook_secret, editable=False
    )
    previous_webhook_secret = models.CharField(max_length=64, blank=True, editable=False)
    previous_webhook_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    # Automatic follow-up (paylinks/followups.py): an invoice link that expired unpaid is sent
    # again by PayLinks itself, after a delay, within opening hours, a few times per invoice.
    auto_follow_up = models.BooleanField(
        _("send expired links again automatically"),
        default=False,
        help_text=_(
            "When a link for an invoice expires unpaid and something is still due, PayLinks "
            "sends a new link the same way, within the opening hours below."
        ),
    )
    follow_up_delay_hours = models.PositiveSmallIntegerField(
        _("delay after expiry (hours)"),
        default=24,
        validators=[
            MinValueValidator(FOLLOW_UP_MIN_DELAY_HOURS),
            MaxValueValidator(FOLLOW_UP_MAX_DELAY_HOURS),
        ],
        help_text=_("How long after a link expired it is sent again (1 to 168 hours)."),
    )
    follow_up_days = models.JSONField(
        _("opening days"),
        default=working_days,
        blank=True,
        validators=[validate_weekdays],
        help_text=_("Links are only sent again on these days, in the practice's time zone."),
    )
    follow_up_opens_at = models.TimeField(_("opens at"), default=dt.time(8, 0))
    follow_up_closes_at = models.TimeField(_("closes at"), default=dt.time(17, 0))
    follow_up_max_sends = models.PositiveSmallIntegerField(
        _("automatic sends per invoice"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(FOLLOW_UP_MAX_SENDS)],
        help_text=_("At most this many links are sent automatically for one invoice."),
    )
    # When automatic follow-up was last turned on: only links that expire after it are sent
    # again, so turning it on doesn't send every old expired link at once.
    follow_up_since = models.DateTimeField(null=True, blank=True, editable=False)
    # Provet asked PayLinks to wait (a 429 on any request), or the poller found the credentials
    # refused: background work stops until then (Practice.pause, PracticeQuerySet.unpaused).
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    connection_problem = models.CharField(max_length=300, blank=True, editable=False)
    # The poller's last pass over this practice (paused or not): /healthz tells its age.
    polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The poller's last complete read of Provet's invoice changes (paylinks/polling.py).
    feed_read_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PracticeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(domain="") | ~models.Q(base_url=""),
                name="practice_has_domain_or_base_url",
                violation_error_message=_("Give the Provet Cloud domain or a full base URL."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Turned on: links that expired before now are left to the desk. Turned off: forgotten,
        # so turning it on again starts afresh.
        since = self.follow_up_since
        if self.auto_follow_up != (since is not None):
            self.follow_up_since = timezone.now() if self.auto_follow_up else None
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "follow_up_since"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        errors = {}
        opens, closes = self.follow_up_opens_at, self.follow_up_closes_at
        if opens is not None and closes is not None and closes <= opens:
            errors["follow_up_closes_at"] = _("The practice must close after it opens.")
        if self.auto_follow_up and not self.follow_up_days:
            errors["follow_up_days"] = _(
                "Choose at least one opening day, or turn automatic follow-up off."
            )
        if errors:
            raise ValidationError(errors)

    def pause(self, until: dt.datetime, problem: str | None = None) -> bool:
        """Stop the practice's background work until `until`, in every process: Provet asked
        PayLinks to wait (a 429), or refused its credentials (`problem` says so in admin).

        A longer pause already set stands: the conditional UPDATE never shortens it, even when
        two processes pause at once. Answers whether the pause was set or lengthened."""
        rows = Practice.objects.filter(pk=self.pk)
        if problem is not None:
            rows.update(connection_problem=problem)
            self.connection_problem = problem
        shorter = Q(paused_until__isnull=True) | Q(paused_until__lt=until)
        lengthened = bool(rows.filter(shorter).update(paused_until=until))
        if lengthened:
            self.paused_until = until
        return lengthened

    def pause_ends_at(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """When the pause in force now ends, or None: read afresh, as another process may
        have paused the practice since this row was loaded."""
        paused = Practice.objects.filter(pk=self.pk).paused(now)
        return paused.values_list("paused_until", flat=True).first()

    def is_open_at(self, moment: dt.datetime) -> bool:
        """Whether the practice is open at this moment, by its opening hours in its time zone:
        when automatic follow-ups may go out."""
        local = moment.astimezone(self.zone)
        open_hours = self.follow_up_opens_at <= local.time() < self.follow_up_closes_at
        return local.isoweekday() in (self.follow_up_days or []) and open_hours

    def rotate_webhook_secret(self) -> None:
        """A new webhook address; the old one is still accepted for WEBHOOK_SECRET_GRACE."""
        self.previous_webhook_secret = self.webhook_secret
        self.previous_webhook_secret_until = timezone.now() + WEBHOOK_SECRET_GRACE
        self.webhook_secret = new_webhook_secret()
        self.save(
            update_fields=[
                "webhook_secret",
                "previous_webhook_secret",
                "previous_webhook_secret_until",
            ]
        )

    # Credentials are only ever stored encrypted; these properties are the way in and out.
    @property
    def client_secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(value)

    @property
    def api_token(self) -> str:
        return crypto.decrypt(self.api_token_encrypted)

    @api_token.setter
    def api_token(self, value: str) -> None:
        self.api_token_encrypted = crypto.encrypt(value)

    @property
    def has_credentials(self) -> bool:
        if self.auth_scheme == self.AuthScheme.OAUTH2:
            return bool(self.client_id and self.client_secret_encrypted)
        return bool(self.api_token_encrypted)

    @property
    def root_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/") + "/"
        return f"https://{self.domain.strip('/')}/{self.provet_id}/"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """The date it is now in the practice's time zone."""
        return (now or timezone.now()).astimezone(self.zone).date()

    def start_of_today(self) -> dt.datetime:
        return midnight(self.today(), self.zone)

    def connection(self) -> Connection:
        return Connection(
            root=self.root_url,
            auth_scheme=self.auth_scheme,
            client_id=self.client_id,
            client_secret=self.client_secret,
            api_token=self.api_token,
        )

    def provet_client(self) -> ProvetClient:
        """A client whose every request is spent from this practice's shared budget."""
        from clinics.budget import Budget  # it counts in this module's models

        return ProvetClient(self.connection(), budget=Budget(self))


class Department(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="departments")
    provet_id = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    allow_nhp_processing = models.BooleanField(
        _("Provet Pay allowed"),
        default=False,
        help_text=_("Synced from Provet: payment links can only be made where this is on."),
    )
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["practice", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "provet_id"], name="department_unique_per_practice"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        RECEPTION = "reception", _("Reception")
        MANAGER = "manager", _("Manager")
        ADMIN = "admin", _("Admin")

    MANAGING_ROLES = (Role.MANAGER, Role.ADMIN)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.RECEPTION)

    class Meta:
        ordering = ["practice", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "practice"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.practice} ({self.get_role_display()})"


class RequestBudget(models.Model):
    """How many requests PayLinks sent to a practice's Provet lately (clinics/budget.py).

    One row per practice, changed only by conditional UPDATEs, so every process and machine
    counts on it and two of them can't both take the last request.
    """

    practice = models.OneToOneField(
        Practice, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    minute = models.BigIntegerField(default=0)  # minutes since the Unix epoch, UTC
    spent = models.PositiveIntegerField(default=0)  # in `minute`
    spent_before = models.PositiveIntegerField(default=0)  # in the minute before it

    def __str__(self) -> str:
        return f"{self.spent} requests in minute {self.minute}"


class Profile(models.Model):
    """A person's own settings: the language of their pages, and the e-mails they asked for."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    # Blank: the browser's language.
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, blank=True)
    weekly_summary = models.BooleanField(
        _("weekly summary e-mail"),
        default=False,
        help_text=_("Every Monday morning, the past week's figures of the practices I manage."),
    )
    # The Monday of the last week summarised to this person: claimed by a conditional UPDATE, so
    # that two workers never send the same week twice (reports/weekly.py).
    weekly_summary_sent_for = models.DateField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return str(self.user)

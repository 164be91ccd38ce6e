"""The sandbox's own tables: a miniature Provet Cloud, one row set per installation."""

import uuid

from django.db import models


class Installation(models.Model):
    """One Provet Cloud installation (`/<provet_id>/api/0.1/`)."""

    provet_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2)
    currency = models.CharField(max_length=3)
    timezone = models.CharField(max_length=64, default="UTC")
    client_id = models.CharField(max_length=100, unique=True)
    client_secret = models.CharField(max_length=100)
    legacy_token = models.CharField(max_length=100, blank=True)
    # {"GET /department/": 5}: limits set through the control API, over the reference's table.
    rate_limits = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.provet_id} {self.name}"

    @property
    def integration_user(self) -> "ProvetUser | None":
        return self.users.filter(is_integration=True).order_by("id").first()


class AccessToken(models.Model):
    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token of {self.installation_id}"


class ProvetUser(models.Model):
    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="users")
    email = models.EmailField()
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    is_integration = models.BooleanField(default=False)
    # Provet's "Financial: Invoices" permission, needed to create a postransaction.
    can_manage_invoices = models.BooleanField(default=True)
    modified = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Department(models.Model):
    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="departments"
    )
    name = models.CharField(max_length=200)
    allow_nhp_processing = models.BooleanField(default=True)
    modified = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class CustomerType(models.IntegerChoices):
    PRIVATE = 0
    COMPANY = 1
    EU_COMPANY = 2
    CHARITY = 3
    UK_CHARITY = 4


class Client(models.Model):
    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="clients")
    firstname = models.CharField(max_length=100, blank=True)
    lastname = models.CharField(max_length=100, blank=True)
    organization_name = models.CharField(max_length=200, blank=True)
    customer_type = models.IntegerField(choices=CustomerType, default=CustomerType.PRIVATE)
    email = models.CharField(max_length=254, blank=True)
    no_sms = models.BooleanField(default=False)
    no_email = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    created = models.DateTimeField()
    modified = models.DateTimeField()

    def __str__(self) -> str:
        return self.organization_name or f"{self.firstname} {self.lastname}"


class PhoneNumber(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="phone_numbers")
    type_code = models.IntegerField(default=1)
    phone_number = models.CharField(max_length=32)
    description = models.CharField(max_length=100, blank=True)
    preferred_reminders = models.BooleanField(default=False)
    # Hidden from the API: an SMS to this number fails, so delivery failures can be shown.
    undeliverable = models.BooleanField(default=False)
    modified = models.DateTimeField()

    def __str__(self) -> str:
        return self.phone_number


class InvoiceStatus(models.IntegerChoices):
    DRAFT = 0
    SENT = 1
    OPEN = 2
    FINALIZED = 3
    INVOICING = 4
    VOIDED = 99


class Invoice(models.Model):
    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="invoices"
    )
    invoice_number = models.PositiveIntegerField(null=True, blank=True)
    invoice_prefix = models.CharField(max_length=20, blank=True)
    status = models.IntegerField(choices=InvoiceStatus, default=InvoiceStatus.DRAFT)
    invoice_date = models.DateField(null=True, blank=True)
    invoice_due_date = models.DateField(null=True, blank=True)
    date_paid = models.DateField(null=True, blank=True)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="invoices")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="invoices")
    total = models.DecimalField(max_digits=12, decimal_places=2)
    total_vat = models.DecimalField(max_digits=12, decimal_places=2)
    total_with_vat = models.DecimalField(max_digits=12, decimal_places=2)
    due_sum = models.DecimalField(max_digits=12, decimal_places=2)
    credit_note = models.BooleanField(default=False)
    created = models.DateTimeField()
    modified = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.invoice_prefix}{self.invoice_number or 'draft'} ({self.pk})"


class PaymentStatus(models.IntegerChoices):
    PENDING = 1
    FAILED = 2
    EXPIRED = 3
    ABORTED = 4
    ACCEPTED = 5


class DeliveryStatus(models.IntegerChoices):
    NOT_SENT = 1
    SENT = 2
    FAILED = 3


class DeliveryMethod(models.IntegerChoices):
    DO_NOT_SEND = 0
    SMS_AND_EMAIL = 1
    EMAIL_ONLY = 2
    SMS_ONLY = 3


class Payment(models.Model):
    """Money received through a link; without an invoice it is an unallocated payment."""

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, null=True, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, null=True, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    psp_reference = models.CharField(max_length=16, unique=True)
    created = models.DateTimeField()

    def __str__(self) -> str:
        return self.psp_reference


class PosTransaction(models.Model):
    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="postransactions"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    invoice = models.ForeignKey(
        Invoice, null=True, on_delete=models.PROTECT, related_name="postransactions"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    creator = models.ForeignKey(ProvetUser, on_delete=models.PROTECT, related_name="+")
    terminal_id = models.IntegerField(default=0)
    payment_type = models.IntegerField()
    transaction_type = models.IntegerField()
    payment = models.ForeignKey(Payment, null=True, on_delete=models.SET_NULL, related_name="+")
    aborted = models.DateTimeField(null=True)
    created = models.DateTimeField()
    modified = models.DateTimeField()

    # payment_link
    external_id = models.UUIDField(default=uuid.uuid4, unique=True)
    expiration_time = models.DateTimeField()
    payment_status = models.IntegerField(choices=PaymentStatus, default=PaymentStatus.PENDING)
    delivery_status = models.IntegerField(choices=DeliveryStatus, default=DeliveryStatus.NOT_SENT)
    delivery_method = models.IntegerField(choices=DeliveryMethod, default=DeliveryMethod.EMAIL_ONLY)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255, blank=True)
    return_url = models.CharField(max_length=2000, blank=True)
    tokenize = models.CharField(max_length=3, blank=True)
    recurring_model = models.CharField(max_length=12, blank=True)
    card_saved = models.BooleanField(default=False)

    # prepayment_data
    prepayment_client = models.ForeignKey(
        Client, null=True, on_delete=models.PROTECT, related_name="+"
    )
    prepayment_department = models.ForeignKey(
        Department, null=True, on_delete=models.PROTECT, related_name="+"
    )
    prepayment_description = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [
            # Lazy expiry and delivery look for these on every read of the list.
            models.Index(
                fields=["installation", "payment_status", "expiration_time"],
                name="sandbox_pt_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"postransaction {self.pk} ({self.external_id})"

    @property
    def unallocated_payment(self) -> Payment | None:
        if self.invoice_id is None and self.payment_id is not None:
            return self.payment
        return None


class OutboxMessage(models.Model):
    """An SMS or email Provet would have sent; shown on the outbox page."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email"

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        FAILED = "failed"

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="outbox")
    postransaction = models.ForeignKey(
        PosTransaction, null=True, on_delete=models.SET_NULL, related_name="messages"
    )
    channel = models.CharField(max_length=5, choices=Channel)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=255, blank=True)
    text = models.TextField()
    status = models.CharField(max_length=6, choices=Status, default=Status.QUEUED)
    created = models.DateTimeField()
    deliver_at = models.DateTimeField()
    undeliverable = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}"


class Webhook(models.Model):
    class Trigger(models.IntegerChoices):
        INVOICE = 9
        INVOICE_PAYMENT = 11
        UNALLOCATED_PAYMENT = 12

    class ContentType(models.IntegerChoices):
        FORM = 1
        JSON = 2

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.CharField(max_length=2000)
    trigger = models.IntegerField(choices=Trigger)
    content_type = models.IntegerField(choices=ContentType, default=ContentType.FORM)

    def __str__(self) -> str:
        return f"{self.trigger} -> {self.url}"


class WebhookDelivery(models.Model):
    MAX_ATTEMPTS = 10

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    body = models.TextField()
    content_type = models.CharField(max_length=64)
    status = models.CharField(max_length=9, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created = models.DateTimeField()

    class Meta:
        indexes = [
            # Retried lazily on every API request (sandbox.webhooks.deliver_due).
            models.Index(fields=["status", "next_attempt_at"], name="sandbox_hook_due_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField()
    status_code = models.IntegerField(null=True)
    error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"attempt at {self.at} -> {self.status_code or self.error}"


class Fault(models.Model):
    class Kind(models.TextChoices):
        LATENCY = "latency"
        ERROR_500 = "500"
        ERROR_503 = "503"
        ERROR_429 = "429"
        TIMEOUT = "timeout"
        DROP = "drop"

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="faults")
    path = models.CharField(max_length=500, help_text="Regular expression searched in the path")
    method = models.CharField(max_length=10, blank=True)
    kind = models.CharField(max_length=7, choices=Kind)
    remaining = models.PositiveIntegerField(null=True, help_text="Empty: every matching request")
    latency_ms = models.PositiveIntegerField(default=1000)
    retry_after = models.PositiveIntegerField(default=30)
    seconds = models.FloatField(default=30)

    def __str__(self) -> str:
        return f"{self.kind} on {self.method or 'any'} {self.path}"


class ClockOffset(models.Model):
    """A single row: how far the sandbox clock runs ahead of the real one."""

    seconds = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.seconds:+} s"


class EventReceiver(models.Model):
    """A stand-in for a clinic's own system that PayLinks sends its outgoing events to
    (`/sandbox/_receiver/<name>/`). It knows the endpoint's secret when it has been told
    (sandbox.receiver.configure), and then checks each request's signature."""

    name = models.SlugField(max_length=100, unique=True)
    secret = models.CharField(max_length=200, blank=True)
    # What it answers every POST with: 200, or e.g. 500 to see PayLinks retry.
    answer_status = models.PositiveSmallIntegerField(default=200)
    created = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class ReceivedEvent(models.Model):
    receiver = models.ForeignKey(EventReceiver, on_delete=models.CASCADE, related_name="received")
    received_at = models.DateTimeField()
    headers = models.JSONField(default=dict)
    body = models.TextField()
    event_id = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=40, blank=True)
    # None: the receiver wasn't told the secret, so it couldn't check.
    signature_valid = models.BooleanField(null=True)
    answered = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type or 'request'} at {self.received_at}"

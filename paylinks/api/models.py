"""API keys, and the record of each request made with an Idempotency-Key."""

from typing import ClassVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from clinics.models import Membership, Practice


class APIKey(AbstractAPIKey):
    """A key a clinic's other system (booking site, kiosk, accounting tool) calls the API with.

    Only its hash is stored; the key is shown once, when it is made (admin, or
    `manage.py create_api_key`). It belongs to one practice and carries a role, like a person's
    membership. Each key acts as a user of its own, who can never log in and is a member of the
    key's practice with the key's role: the API is scoped by exactly the memberships the pages
    are scoped by (paylinks/access.py), and the links a key makes say who made them.
    """

    objects: ClassVar[APIKeyManager] = APIKeyManager()

    class Role(models.TextChoices):
        RECEPTION = Membership.Role.RECEPTION, _("Reception")
        MANAGER = Membership.Role.MANAGER, _("Manager")

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="api_keys")
    role = models.CharField(
        max_length=10,
        choices=Role.choices,
        default=Role.RECEPTION,
        help_text=_("Reception makes and follows links; a manager also sees the summary."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        editable=False,
        related_name="api_key",
        help_text=_("Who the key acts as: made with the key, never able to log in."),
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def save(self, *args, **kwargs) -> None:
        if not self.prefix:
            raise ValueError("Make keys with APIKey.objects.create_key() or in admin")
        with transaction.atomic():
            if self.user_id is None:
                user = get_user_model().objects.create_user(f"api-key-{self.prefix}")
                self.user = user
            super().save(*args, **kwargs)
            self._sync_user()

    def _sync_user(self) -> None:
        """The key's user mirrors the key: its name, whether it may act, its one membership."""
        assert self.user is not None
        user = self.user
        user.first_name = f"{self.name} (API key)"[:150]
        user.is_active = not self.revoked
        user.set_unusable_password()
        user.save(update_fields=["first_name", "is_active", "password"])
        Membership.objects.filter(user=user).exclude(practice=self.practice).delete()
        Membership.objects.update_or_create(
            user=user, practice=self.practice, defaults={"role": self.role}
        )


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of one caller, and the answer its first request got.

    The row is inserted in a transaction of its own before the request does anything; a second
    request with the same key hits the unique constraint, and that is what makes concurrent
    requests with one key act once (paylinks/api/idempotency.py)."""

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    # Whose key it is: "key:<API key prefix>" or "user:<user id>".
    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    # The request the key was first used for: method, path and body, hashed.
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    # The key the request makes its payment link with (PaymentLink.idempotency_key): a request
    # that takes over from one that died finds what that one made instead of making it again.
    link_key = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the running request claimed the key (a takeover claims it again).
    locked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_one_per_scope_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"

"""API keys in admin: made here (the key is shown once, on the next page), revoked here."""

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from rest_framework_api_key.models import APIKey as UnscopedAPIKey

from paylinks.api.models import APIKey

# The library's own keys belong to no practice: PayLinks uses only its own.
if admin.site.is_registered(UnscopedAPIKey):
    admin.site.unregister(UnscopedAPIKey)


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "practice", "role", "prefix", "created", "expiry_date", "revoked"]
    list_filter = ["practice", "role", "revoked", "created"]
    search_fields = ["name", "prefix", "practice__name"]
    fields = ["name", "practice", "role", "expiry_date", "revoked", "prefix"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["prefix"]
        # A key stays with the practice it was made for; a revoked key stays revoked.
        frozen = ["name", "role", "expiry_date", "revoked"] if obj.revoked else []
        return ["prefix", "practice", *frozen]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            obj.save()
            return
        key = APIKey.objects.assign_key(obj)
        obj.save()
        messages.warning(
            request,
            _(
                "The API key for %(name)s is: %(key)s. Please store it somewhere safe: "
                "you will not be able to see it again."
            )
            % {"name": obj.name, "key": key},
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the links a key made keep saying who made them

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (/api/v1/): its own app, so its API keys and idempotency records have
    migrations of their own beside paylinks'."""

    name = "paylinks.api"
    label = "paylinks_api"
    verbose_name = "API"

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Development only, like the sandbox: demo practices, staff and history."""

    name = "demo"
    verbose_name = "Demo"

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PaylinksConfig(AppConfig):
    name = "paylinks"

    def ready(self) -> None:
        from paylinks.schedules import sync_schedules

        post_migrate.connect(sync_schedules, sender=self, dispatch_uid="paylinks-schedules")

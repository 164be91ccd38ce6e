"""The nightly drift check schedule. Idempotent: keyed by name, never duplicated."""

import datetime as dt

from django.db import migrations
from django.utils import timezone

NAME = "Nightly drift check"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    tonight = timezone.now().replace(hour=2, minute=30, second=0, microsecond=0)
    if tonight <= timezone.now():
        tonight += dt.timedelta(days=1)
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={
            "func": "paylinks.tasks.check_drift",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": tonight,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("paylinks", "0005_drift_finding"), ("django_q", "0018_task_success_index")]

    operations = [migrations.RunPython(create, remove)]

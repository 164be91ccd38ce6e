"""The every-minute poller schedule. Idempotent: keyed by name, never duplicated."""

from django.db import migrations

NAME = "Poll links that are due"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": "paylinks.tasks.poll",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("paylinks", "0002_schedules")]

    operations = [migrations.RunPython(create, remove)]

"""Once made a django-q2 schedule. Schedules now live in paylinks/schedules.py, synced after
every migrate; this migration stays, empty, so the history holds."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("paylinks", "0002_schedules")]

    operations: list = []

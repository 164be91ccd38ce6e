"""`manage.py create_api_key --practice NAME --name "Booking site" [--role manager] [--days N]`:
a new API key, printed once (only its hash is kept)."""

import datetime as dt
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from clinics.models import Practice
from paylinks.api.models import APIKey


class Command(BaseCommand):
    help = "Make an API key for a practice and print it (it is shown this once)."

    def add_arguments(self, parser):
        parser.add_argument("--practice", required=True, help="The practice's name or code.")
        parser.add_argument("--name", required=True, help="What calls with it, e.g. Booking site")
        parser.add_argument("--role", choices=APIKey.Role.values, default=APIKey.Role.RECEPTION)
        parser.add_argument("--days", type=int, help="Expires after this many days (never).")

    def handle(self, *args, practice: str, name: str, role: str, days: int | None, **options):
        found = Practice.objects.filter(name=practice).first()
        if found is None:
            try:
                found = Practice.objects.filter(code=uuid.UUID(practice)).first()
            except ValueError:  # not a code either
                found = None
        if found is None:
            raise CommandError(f"No practice is called {practice!r}.")
        expiry = timezone.now() + dt.timedelta(days=days) if days else None
        _, key = APIKey.objects.create_key(name=name, practice=found, role=role, expiry_date=expiry)
        self.stdout.write(key)

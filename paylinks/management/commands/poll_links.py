import time

from django.core.management.base import BaseCommand

from paylinks.management.commands._practice import practice_named
from paylinks.polling import TICK, poll_due_links


class Command(BaseCommand):
    help = "Ask Provet about the payment links that are due (what the every-minute schedule runs)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument("--practice", help="Only this practice (its name or Provet id).")

    def handle(self, *args, once: bool, practice: str | None, **options):
        chosen = practice_named(practice) if practice else None
        while True:
            report = poll_due_links(practice=chosen)
            self.stdout.write(str(report))
            if once:
                return
            time.sleep(TICK.total_seconds())

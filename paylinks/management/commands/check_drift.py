from django.core.management.base import BaseCommand

from clinics.models import Practice
from paylinks.drift import find_drift
from paylinks.management.commands._practice import practice_named


class Command(BaseCommand):
    help = "Compare invoices and links and list the mismatches (what the nightly schedule runs)."

    def add_arguments(self, parser):
        parser.add_argument("--practice", help="Only this practice (its name or Provet id).")

    def handle(self, *args, practice: str | None, **options):
        if practice:
            practices = [practice_named(practice)]
        else:
            practices = list(Practice.objects.filter(is_active=True))
        for each in practices:
            findings = find_drift(each)
            self.stdout.write(f"{each.name}: {len(findings)} mismatches")
            for finding in findings:
                self.stdout.write(f"  {finding.get_kind_display()}: {finding.message}")

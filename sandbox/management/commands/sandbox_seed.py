import json

from django.core.management.base import BaseCommand

from sandbox.seed import seed_sandbox


class Command(BaseCommand):
    help = "Create the sandbox's clinic group (idempotent: existing installations are kept)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the installations as JSON")

    def handle(self, *args, **options):
        installations = seed_sandbox()
        if options["json"]:
            self.stdout.write(json.dumps(installations, indent=2, ensure_ascii=False))
            return
        for row in installations:
            self.stdout.write(
                f"{row['provet_id']} {row['name']}: client_id={row['client_id']} "
                f"client_secret={row['client_secret']} legacy_token={row['legacy_token'] or '-'} "
                f"integration_user={row['integration_user_id']} departments={row['department_ids']}"
            )

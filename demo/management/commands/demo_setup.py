"""Seed the sandbox and connect a demo practice to it, with demo staff of each role, and give
each practice five weeks of payment links (paylinks/demo.py).

Idempotent: running it again refreshes the same practices and people, and adds no links to a
practice that has some.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.urls import reverse

from clinics.models import Membership, Practice
from clinics.provet import client as provet_client
from clinics.provet.in_process import wsgi_transport
from clinics.sync import sync_departments
from demo.practices import connect_sandbox_installation
from paylinks.models import EventEndpoint, EventType, new_endpoint_secret

DEMO_PASSWORD = "paylinks-demo"

# Payment links made on a usual weekday, by Provet id: Northvale is the larger practice.
LINKS_PER_DAY = {4: 12, 7: 7}

# username, first name, last name, role, which sandbox installation (by position), superuser
DEMO_STAFF = [
    ("reception", "Riikka", "Rantanen", Membership.Role.RECEPTION, [0], False),
    ("manager", "Mikko", "Mäkelä", Membership.Role.MANAGER, [0], False),
    ("admin", "Aino", "Aalto", Membership.Role.ADMIN, [0, 1], True),
    ("riverside", "Hannah", "Hughes", Membership.Role.RECEPTION, [1], False),
]


class Command(BaseCommand):
    help = "Seed the Provet sandbox and a demo practice with demo staff (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where this app will be served; the practices reach the sandbox there.",
        )

    def handle(self, *args, base_url: str, **options):
        from demo.history import seed_link_history  # the demo set-up reaches across apps
        from sandbox.control import add_webhook, clear_webhooks
        from sandbox.seed import seed_sandbox  # the demo is the one place that may

        installations = seed_sandbox()
        practices = [connect_sandbox_installation(item, base_url) for item in installations]
        # As a clinic would set it up in Provet: payments are announced to PayLinks at once.
        for practice in practices:
            clear_webhooks(practice.provet_id)
            url = base_url.rstrip("/") + reverse(
                "paylinks:provet_webhook", kwargs={"secret": practice.webhook_secret}
            )
            add_webhook(practice.provet_id, url, trigger=11)
            add_webhook(practice.provet_id, url, trigger=12, content_type=2)
        self._staff(practices)
        # The server isn't listening yet, so the first sync goes through the sandbox in-process.
        transport = wsgi_transport()
        original = provet_client.default_transport
        provet_client.default_transport = lambda: transport
        try:
            for practice in practices:
                result = sync_departments(practice)
                self.stdout.write(f"{practice}: {result.created + result.updated} departments")
        finally:
            provet_client.default_transport = original
        # So the dashboard, the links list and the follow-up queue have something to show.
        for practice in practices:
            history = seed_link_history(practice, per_day=LINKS_PER_DAY.get(practice.provet_id, 8))
            if history is None:
                self.stdout.write(f"{practice}: has payment links already, none added")
            else:
                self.stdout.write(f"{practice}: {history}")
        # A clinic's own system, served by the sandbox, told of everything that happens.
        for practice in practices:
            url = self._event_endpoint(practice, base_url)
            self.stdout.write(f"{practice}: outgoing events go to {url}")

        self.stdout.write(self.style.SUCCESS(f"\nDemo ready at {base_url}/"))
        self.stdout.write(f"Log in with any of these (password {DEMO_PASSWORD!r}):")
        for username, first, last, role, where, _ in DEMO_STAFF:
            names = ", ".join(practices[i].name for i in where)
            self.stdout.write(f"  {username:<10} {first} {last}, {role.label} at {names}")
        self.stdout.write(f"Sandbox (Provet Cloud stand-in, outboxes): {base_url}/sandbox/")

    def _event_endpoint(self, practice: Practice, base_url: str) -> str:
        """One endpoint for every event, at a sandbox receiver that knows its secret."""
        from sandbox.receiver import configure

        name = f"practice-{practice.provet_id}"
        url = base_url.rstrip("/") + reverse("sandbox:receiver", kwargs={"name": name})
        endpoint = EventEndpoint.objects.filter(practice=practice, url=url).first()
        if endpoint is None:
            endpoint = EventEndpoint(practice=practice, url=url)
            endpoint.secret = new_endpoint_secret()
        endpoint.description = "The sandbox's event receiver (demo)"
        endpoint.events = list(EventType.values)
        endpoint.is_active = True
        endpoint.save()
        configure(name, secret=endpoint.secret, status=200)
        return url

    def _staff(self, practices: list[Practice]) -> None:
        User = get_user_model()
        for username, first, last, role, where, superuser in DEMO_STAFF:
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name = first, last
            user.email = f"{username}@example.com"
            user.is_staff = user.is_superuser = superuser
            user.set_password(DEMO_PASSWORD)
            user.save()
            for index in where:
                Membership.objects.update_or_create(
                    user=user, practice=practices[index], defaults={"role": role}
                )

"""A believable clinic group for demos and tests: deterministic and idempotent.

Each installation is created whole, in one transaction, the first time; when its provet_id
already exists it is left exactly as it is. Dates are laid out backwards from today so the
demo looks current; everything else comes from a fixed random seed.
"""

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from sandbox.models import (
    Client,
    CustomerType,
    Department,
    Installation,
    Invoice,
    InvoiceStatus,
    PhoneNumber,
    ProvetUser,
)

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Plan:
    provet_id: int
    name: str
    country: str
    currency: str
    timezone: str
    client_id: str
    client_secret: str
    legacy_token: str
    domain: str
    vat: Decimal
    invoice_prefix: str
    departments: tuple[tuple[str, bool], ...]
    staff: tuple[tuple[str, str], ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    companies: tuple[str, ...]
    phone_prefix: str
    phone_digits: int
    undeliverable_number: str
    clients: int
    invoices: int


PLANS = (
    Plan(
        provet_id=4,
        name="Northvale Veterinary Group",
        country="FI",
        currency="EUR",
        timezone="Europe/Helsinki",
        client_id="northvale-paylinks",
        client_secret="northvale-sandbox-secret-4",
        # The key in Provet's own Provet Pay examples.
        legacy_token="a8b8ca3886cd4775a44744e107e2239e",
        domain="northvale.example",
        vat=Decimal("0.255"),
        invoice_prefix="NV-",
        departments=(
            ("Northvale Helsinki Small Animal Clinic", True),
            ("Northvale Espoo Clinic", True),
            ("Northvale Tampere Clinic", True),
            ("Northvale Equine Ambulatory", False),
        ),
        staff=(
            ("Aino", "Virtanen"),
            ("Mikko", "Korhonen"),
            ("Laura", "Nieminen"),
            ("Sanna", "Mäkelä"),
        ),
        first_names=(
            "Anna",
            "Eero",
            "Helmi",
            "Juha",
            "Katja",
            "Lauri",
            "Maija",
            "Niko",
            "Oona",
            "Pekka",
            "Riikka",
            "Sami",
            "Tiina",
            "Ville",
            "Elina",
            "Antti",
            "Johanna",
            "Matti",
        ),
        last_names=(
            "Lahtinen",
            "Heikkinen",
            "Koskinen",
            "Järvinen",
            "Lehtonen",
            "Salminen",
            "Laine",
            "Hämäläinen",
            "Rantanen",
            "Smith",
            "Karjalainen",
            "Aaltonen",
            "Smeds",
            "Ojala",
        ),
        companies=("Hevostalli Aurora Oy", "Koirakoulu Vauhti Oy", "Kennel Lumikki Ky"),
        phone_prefix="+35840",
        phone_digits=7,
        undeliverable_number="+358400000404",
        clients=60,
        invoices=220,
    ),
    Plan(
        provet_id=7,
        name="Riverside Animal Hospital",
        country="GB",
        currency="GBP",
        timezone="Europe/London",
        client_id="riverside-paylinks",
        client_secret="riverside-sandbox-secret-7",
        legacy_token="",
        domain="riverside-vets.example",
        vat=Decimal("0.20"),
        invoice_prefix="RAH",
        departments=(("Riverside Hospital", True), ("Riverside Out of Hours", True)),
        staff=(("Emma", "Clarke"), ("James", "Patel"), ("Olivia", "Hughes")),
        first_names=(
            "Oliver",
            "Amelia",
            "Harry",
            "Isla",
            "George",
            "Ava",
            "Noah",
            "Mia",
            "Jack",
            "Grace",
            "Charlie",
            "Freya",
            "Thomas",
            "Lily",
        ),
        last_names=(
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Evans",
            "Davies",
            "Robinson",
            "Wright",
            "Walker",
            "Thompson",
        ),
        companies=("Thames Valley Stables Ltd", "Greenfield Farm Partnership"),
        # Mobiles that phonenumbers accepts, as a clinic's would be (it refuses Ofcom's drama
        # range, 07700 900xxx, as no number at all). The sandbox never sends a real SMS.
        phone_prefix="+447700100",
        phone_digits=3,
        undeliverable_number="+447700100404",
        clients=30,
        invoices=80,
    ),
)


def seed_sandbox() -> list[dict]:
    """Create the installations that don't exist yet; describe them all."""
    for plan in PLANS:
        with transaction.atomic():
            if not Installation.objects.filter(provet_id=plan.provet_id).exists():
                _build(plan)
    return [describe(Installation.objects.get(provet_id=plan.provet_id)) for plan in PLANS]


def describe(installation: Installation) -> dict:
    integration = installation.integration_user
    departments = installation.departments.order_by("id")
    return {
        "provet_id": installation.provet_id,
        "name": installation.name,
        "country": installation.country,
        "currency": installation.currency,
        "timezone": installation.timezone,
        "client_id": installation.client_id,
        "client_secret": installation.client_secret,
        "legacy_token": installation.legacy_token,
        "api_path": f"/sandbox/{installation.provet_id}/api/0.1/",
        "token_path": f"/sandbox/{installation.provet_id}/oauth2/token/",
        "integration_user_id": integration.pk if integration else None,
        "department_ids": [d.pk for d in departments],
        "departments": [
            {"id": d.pk, "name": d.name, "allow_nhp_processing": d.allow_nhp_processing}
            for d in departments
        ],
    }


def _build(plan: Plan) -> None:
    rng = random.Random(plan.provet_id * 7919)
    zone = ZoneInfo(plan.timezone)
    today = timezone.localdate(timezone.now(), zone)
    start = datetime.combine(today - timedelta(days=400), time(9), zone)
    installation = Installation.objects.create(
        provet_id=plan.provet_id,
        name=plan.name,
        country=plan.country,
        currency=plan.currency,
        timezone=plan.timezone,
        client_id=plan.client_id,
        client_secret=plan.client_secret,
        legacy_token=plan.legacy_token,
    )
    departments = [
        Department.objects.create(
            installation=installation, name=name, allow_nhp_processing=allowed, modified=start
        )
        for name, allowed in plan.departments
    ]
    for first, last in plan.staff:
        ProvetUser.objects.create(
            installation=installation,
            email=f"{_ascii(first)}.{_ascii(last)}@{plan.domain}",
            first_name=first,
            last_name=last,
            modified=start,
        )
    ProvetUser.objects.create(
        installation=installation,
        email=f"integration.paylinks@{plan.domain}",
        first_name="Integration",
        last_name="PayLinks",
        is_integration=True,
        modified=start,
    )
    clients = _clients(plan, installation, rng, start)
    _invoices(plan, installation, departments, clients, rng, today, zone)


def _clients(plan: Plan, installation: Installation, rng: random.Random, start) -> list[Client]:
    rows = []
    for n in range(plan.clients):
        created = start + timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 480))
        company = plan.companies[n // 15] if n % 15 == 14 and n // 15 < len(plan.companies) else ""
        first = rng.choice(plan.first_names)
        last = rng.choice(plan.last_names)
        if company:
            email = f"info@{_ascii(company.split()[0])}{n}.example"
        else:
            email = f"{_ascii(first)}.{_ascii(last)}{n}@example.com"
        rows.append(
            Client(
                installation=installation,
                firstname="" if company else first,
                lastname="" if company else last,
                organization_name=company,
                customer_type=CustomerType.COMPANY if company else CustomerType.PRIVATE,
                email="" if n % 17 == 9 else email,
                no_sms=n % 11 == 5,
                no_email=n % 13 == 6,
                archived=n % 29 == 28,
                created=created,
                modified=created,
            )
        )
    clients = Client.objects.bulk_create(rows)
    numbers = []
    for n, client in enumerate(clients):
        if n % 10 == 7:
            continue  # a few clients have no phone number at all
        count = 2 if n % 6 == 0 else 1
        for k in range(count):
            digits = "".join(str(rng.randint(0, 9)) for _ in range(plan.phone_digits))
            numbers.append(
                PhoneNumber(
                    client=client,
                    type_code=1 if k == 0 else 2,
                    phone_number=plan.phone_prefix + digits,
                    description="Mobile" if k == 0 else "Work",
                    preferred_reminders=k == 0,
                    modified=client.modified,
                )
            )
    # One client's number no longer works: an SMS to it fails, as a real one would.
    numbers[2].phone_number = plan.undeliverable_number
    numbers[2].description = "Mobile (disconnected)"
    numbers[2].undeliverable = True
    PhoneNumber.objects.bulk_create(numbers)
    return clients


def _invoices(plan, installation, departments, clients, rng, today: date, zone) -> None:
    number = 10001
    rows = []
    for n in range(plan.invoices):
        day = today - timedelta(days=(plan.invoices - n) * 120 // plan.invoices)
        created = datetime.combine(day, time(8 + n % 9, (n * 7) % 60), zone)
        net = Decimal(rng.randint(2000, 120000)) / 100
        vat = (net * plan.vat).quantize(CENT)
        gross = net + vat
        roll = rng.random()
        status, credit_note = InvoiceStatus.FINALIZED, False
        if roll < 0.08:
            status = InvoiceStatus.DRAFT
        elif roll < 0.13:
            status = InvoiceStatus.OPEN
        elif roll < 0.15:
            status = InvoiceStatus.SENT
        elif roll < 0.19:
            status = InvoiceStatus.VOIDED
        elif roll < 0.22:
            credit_note = True
        due_sum, date_paid = gross, None
        payment = rng.random()
        if status == InvoiceStatus.FINALIZED and not credit_note:
            if payment < 0.35:
                due_sum, date_paid = Decimal("0.00"), day + timedelta(days=rng.randint(0, 10))
                date_paid = min(date_paid, today)
            elif payment < 0.47:
                due_sum = (gross * Decimal(rng.choice(["0.25", "0.5", "0.6"]))).quantize(CENT)
        if credit_note:
            net, vat, gross, due_sum = -net, -vat, -gross, Decimal("0.00")
        numbered = status in (InvoiceStatus.FINALIZED, InvoiceStatus.VOIDED)
        modified = created + timedelta(minutes=rng.randint(1, 90))
        if date_paid:
            modified = max(modified, datetime.combine(date_paid, time(15), zone))
        rows.append(
            Invoice(
                installation=installation,
                invoice_number=number if numbered else None,
                invoice_prefix=plan.invoice_prefix,
                status=status,
                invoice_date=day,
                invoice_due_date=day + timedelta(days=14),
                date_paid=date_paid,
                client=clients[rng.randrange(len(clients))],
                department=departments[0] if n % 3 else rng.choice(departments),
                total=net,
                total_vat=vat,
                total_with_vat=gross,
                due_sum=due_sum,
                credit_note=credit_note,
                created=created,
                modified=modified,
            )
        )
        number += 1 if numbered else 0
    Invoice.objects.bulk_create(rows)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())

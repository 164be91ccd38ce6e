import json
from io import StringIO

from django.core.management import call_command

from sandbox.models import Client, Department, Installation, Invoice, PhoneNumber, ProvetUser
from sandbox.seed import seed_sandbox

MODELS = (Installation, Department, Client, PhoneNumber, Invoice, ProvetUser)


def counts() -> dict:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seeding_twice_changes_nothing(db):
    first = seed_sandbox()
    before = counts()
    assert seed_sandbox() == first
    assert counts() == before


def test_the_seed_makes_a_believable_clinic_group(db):
    northvale, riverside = seed_sandbox()
    assert (northvale["provet_id"], northvale["currency"]) == (4, "EUR")
    assert (riverside["provet_id"], riverside["currency"]) == (7, "GBP")
    departments = Department.objects.filter(installation__provet_id=4)
    assert departments.count() >= 3
    assert departments.filter(allow_nhp_processing=False).count() == 1
    assert Client.objects.filter(installation__provet_id=4).count() >= 50
    assert Client.objects.filter(installation__provet_id=4, customer_type=1).exists()
    assert PhoneNumber.objects.filter(undeliverable=True, phone_number__startswith="+358").exists()
    invoices = Invoice.objects.filter(installation__provet_id=4)
    assert invoices.count() >= 200
    assert {0, 2, 3, 99} <= set(invoices.values_list("status", flat=True))
    assert invoices.filter(credit_note=True).exists()
    assert invoices.filter(due_sum=0, date_paid__isnull=False, credit_note=False).exists()
    part_paid = [i for i in invoices.filter(status=3) if 0 < i.due_sum < i.total_with_vat]
    assert part_paid
    integration = ProvetUser.objects.get(pk=northvale["integration_user_id"])
    assert (integration.first_name, integration.last_name) == ("Integration", "PayLinks")


def test_the_command_prints_the_installations_as_json(db):
    out = StringIO()
    call_command("sandbox_seed", "--json", stdout=out)
    installations = json.loads(out.getvalue())
    assert [i["provet_id"] for i in installations] == [4, 7]
    assert installations[0]["client_id"] == "northvale-paylinks"
    assert installations[0]["legacy_token"]
    assert len(installations[0]["department_ids"]) == 4


def test_every_seeded_phone_is_a_mobile_of_its_practice_s_country(db):
    """The prefilled link form offers SMS only for a valid mobile (clinics.phones.can_take_sms),
    so a demo client must have one, as a clinic's client would."""
    from clinics.phones import can_take_sms

    seed_sandbox()
    numbers = PhoneNumber.objects.select_related("client__installation")
    assert {n.client.installation.country for n in numbers} == {"FI", "GB"}
    not_mobile = [
        n.phone_number
        for n in numbers
        if not can_take_sms(n.phone_number, n.client.installation.country)
    ]
    assert not_mobile == []

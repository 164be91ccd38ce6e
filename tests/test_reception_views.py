"""Reception pages: find what to charge, fill in the form, make the link."""

import pytest

from clinics import phones
from clinics.models import Membership
from clinics.phones import e164
from paylinks.models import PaymentLink
from sandbox.models import Client as ProvetClientRow
from sandbox.models import PosTransaction
from tests.conftest import form_data, invoice_link_body, make_user, sandbox_invoice


@pytest.fixture
def staff(client, receptionist):
    client.force_login(receptionist)
    return client


@pytest.fixture
def provet_invoice(synced_practice):
    return sandbox_invoice(synced_practice)


def test_pages_need_a_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_someone_without_a_practice_is_told_so(client, db):
    client.force_login(make_user("newcomer"))
    response = client.get("/")
    assert response.status_code == 404


def test_an_invoice_is_found_by_its_number(staff, provet_invoice):
    response = staff.get("/", {"q": f"NV-{provet_invoice.invoice_number}"})
    assert response.status_code == 200
    [invoice] = response.context["invoices"]
    assert invoice.provet_id == provet_invoice.id
    assert f"/invoices/{provet_invoice.id}/" in response.content.decode()


def test_an_htmx_search_answers_with_the_results_alone(staff, provet_invoice):
    response = staff.get(
        "/", {"q": str(provet_invoice.invoice_number)}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert f"NV-{provet_invoice.invoice_number}" in html


def test_invoices_are_found_by_client_name(staff, provet_invoice):
    name = provet_invoice.client.lastname
    response = staff.get("/", {"q": name.upper()})
    found = response.context["invoices"]
    assert found
    assert all(name.lower() in invoice.client_name.lower() for invoice in found)


def test_a_search_that_finds_nothing_says_so(staff, synced_practice):
    response = staff.get("/", {"q": "Zyxwvut"})
    assert "No invoice matches" in response.content.decode()


def test_the_invoice_form_is_prefilled_from_provet(staff, provet_invoice, synced_practice):
    response = staff.get(f"/invoices/{provet_invoice.id}/")
    form = response.context["form"]
    number = f"NV-{provet_invoice.invoice_number}"
    assert form["amount"].value() == provet_invoice.due_sum
    assert form["email"].value() == provet_invoice.client.email
    # As the desk writes it: in the practice's national format (040 764 9011).
    stored = provet_invoice.client.phone_numbers.first().phone_number
    assert form["phone"].value() == phones.national(stored, "FI")
    assert form["phone"].value().startswith("0") and e164(form["phone"].value(), "FI") == stored
    assert form["description"].value() == f"Payment for invoice {number}"
    assert form["duration"].value() == str(synced_practice.default_duration_minutes)


def test_a_link_is_made_from_the_form(staff, provet_invoice, receptionist):
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    response = staff.post(f"/invoices/{provet_invoice.id}/", form_data(page))
    link = PaymentLink.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/links/{link.code}/"
    assert link.created_by == receptionist
    assert PosTransaction.objects.get(pk=link.postransaction_id).invoice_id == provet_invoice.id


def test_the_sms_names_the_practice_once(staff, provet_invoice, synced_practice):
    """Provet's SMS starts with the practice's name; the prefilled description doesn't repeat it."""
    from sandbox.models import OutboxMessage

    page = staff.get(f"/invoices/{provet_invoice.id}/")
    staff.post(f"/invoices/{provet_invoice.id}/", form_data(page, delivery_method="3"))
    sms = OutboxMessage.objects.get(channel=OutboxMessage.Channel.SMS)
    assert sms.text.count(synced_practice.name) == 1
    assert f"Payment for invoice NV-{provet_invoice.invoice_number}" in sms.text


def test_a_prepayment_client_s_refusals_are_said_in_plain_words(staff, synced_practice):
    refusing = ProvetClientRow.objects.filter(
        installation__provet_id=synced_practice.provet_id, no_email=True, archived=False
    ).first()
    html = staff.get("/prepayments/new/", {"q": refusing.lastname}).content.decode()
    assert "doesn&#x27;t want e-mails" in html or "doesn't want e-mails" in html
    assert "no email" not in html


def test_a_bad_phone_number_is_shown_at_its_field_and_nothing_is_made(staff, provet_invoice):
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    before = PosTransaction.objects.count()
    response = staff.post(
        f"/invoices/{provet_invoice.id}/", form_data(page, phone="12345", delivery_method="3")
    )
    assert response.status_code == 200
    assert "This is not a valid phone number" in response.context["form"].errors["phone"][0]
    assert 'id="id_phone_error"' in response.content.decode()  # what aria-describedby names
    assert not PaymentLink.objects.exists()
    assert PosTransaction.objects.count() == before


def test_a_double_submit_makes_one_link(staff, provet_invoice):
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    data = form_data(page)
    first = staff.post(f"/invoices/{provet_invoice.id}/", data)
    second = staff.post(f"/invoices/{provet_invoice.id}/", data)
    assert first["Location"] == second["Location"]
    assert PaymentLink.objects.count() == 1
    assert PosTransaction.objects.filter(invoice_id=provet_invoice.id).count() == 1


def test_a_second_full_link_is_refused_and_replace_is_offered(staff, provet_invoice):
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    staff.post(f"/invoices/{provet_invoice.id}/", form_data(page))
    first = PaymentLink.objects.get()
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    assert page.context["form"]["replace"].value() == str(first.code)
    response = staff.post(f"/invoices/{provet_invoice.id}/", form_data(page, replace=""))
    assert "already ask for" in response.context["form"].errors["amount"][0]
    assert PaymentLink.objects.count() == 1


def test_replace_cancels_the_waiting_link_before_making_the_new_one(staff, provet_invoice):
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    staff.post(f"/invoices/{provet_invoice.id}/", form_data(page))
    old = PaymentLink.objects.get()
    page = staff.get(f"/invoices/{provet_invoice.id}/")
    response = staff.post(f"/invoices/{provet_invoice.id}/", form_data(page, phone="040 765 4321"))
    new = PaymentLink.objects.exclude(pk=old.pk).get()
    assert response["Location"] == f"/links/{new.code}/"
    old.refresh_from_db()
    assert old.cancelled_at is not None and new.replaces == old
    assert PosTransaction.objects.get(pk=new.postransaction_id).phone == "+358407654321"
    assert not PosTransaction.objects.filter(pk=old.postransaction_id).exists()
    assert "in place of the link" in new.events.get(kind="created").message
    assert old.events.filter(kind="reissued").exists()


def test_links_made_in_provet_are_imported_and_shown(staff, provet_invoice, synced_practice):
    with synced_practice.provet_client() as provet:
        made_elsewhere = provet.create_postransaction(
            invoice_link_body(
                synced_practice,
                "5.00",
                provet.url_for("department", provet_invoice.department_id),
                provet.url_for("invoice", provet_invoice.id),
            )
        )
    response = staff.get(f"/invoices/{provet_invoice.id}/")
    [link] = response.context["links"]
    assert link.imported and link.postransaction_id == made_elsewhere.id
    assert "Made outside PayLinks" in response.content.decode()
    staff.get(f"/invoices/{provet_invoice.id}/")
    assert PaymentLink.objects.count() == 1


def test_a_draft_invoice_explains_why_no_link_can_be_made(staff, synced_practice):
    from sandbox.models import Invoice as ProvetInvoice

    draft = ProvetInvoice.objects.filter(installation__provet_id=4, status=0).first()
    response = staff.get(f"/invoices/{draft.id}/")
    assert "only a finalized invoice can be paid" in response.content.decode()
    assert "Create link" not in response.content.decode()


def test_an_invoice_provet_does_not_have_is_a_404(staff, synced_practice):
    assert staff.get("/invoices/987654/").status_code == 404


def test_a_prepayment_starts_with_finding_the_client(staff, synced_practice):
    client_row = ProvetClientRow.objects.filter(installation__provet_id=4, no_sms=False).first()
    response = staff.get("/prepayments/new/", {"q": client_row.lastname})
    assert any(c.id == client_row.id for c in response.context["clients"])


def test_a_prepayment_link_is_made_for_the_chosen_client(staff, synced_practice):
    client_row = ProvetClientRow.objects.filter(
        installation__provet_id=4, no_sms=False, no_email=False
    ).first()
    page = staff.get("/prepayments/new/", {"client": client_row.id})
    department = synced_practice.departments.filter(allow_nhp_processing=True).first()
    response = staff.post(
        f"/prepayments/new/?client={client_row.id}",
        form_data(page, department=department.pk, amount="75.00"),
    )
    assert response.status_code == 302, response.context["form"].errors
    link = PaymentLink.objects.get()
    assert link.prepayment.client_provet_id == client_row.id
    posted = PosTransaction.objects.get(pk=link.postransaction_id)
    assert posted.prepayment_client_id == client_row.id


def test_someone_in_two_practices_can_switch_between_them(
    client, receptionist, synced_practice, other_practice
):
    Membership.objects.create(user=receptionist, practice=other_practice)
    client.force_login(receptionist)
    assert client.get("/").context["practice"] == synced_practice
    client.post("/practice/", {"practice": str(other_practice.code)})
    assert client.get("/").context["practice"] == other_practice


def test_nobody_can_switch_into_a_practice_they_do_not_belong_to(staff, other_practice):
    response = staff.post("/practice/", {"practice": str(other_practice.code)})
    assert response.status_code == 404


def test_a_malformed_practice_code_is_a_404_not_an_error(staff):
    assert staff.post("/practice/", {"practice": "not-a-code"}).status_code == 404


def test_the_search_examples_are_the_practice_country_s(client, synced_practice, other_practice):
    finnish = make_user("aino", synced_practice)
    client.force_login(finnish)
    assert 'placeholder="e.g. 1042 or Virtanen"' in client.get("/").content.decode()
    assert 'placeholder="e.g. Virtanen"' in client.get("/prepayments/new/").content.decode()

    british = make_user("emma", other_practice)
    client.force_login(british)
    home = client.get("/").content.decode()
    assert 'placeholder="e.g. 1042 or Smith"' in home
    assert "Virtanen" not in home
    assert 'placeholder="e.g. Smith"' in client.get("/prepayments/new/").content.decode()


def test_the_search_examples_have_a_default_for_any_country():
    from paylinks.forms import search_examples

    assert search_examples("SE")["invoice"] == "e.g. 1042 or Andersson"
    assert search_examples("US") == {"invoice": "e.g. 1042 or a surname", "client": ""}

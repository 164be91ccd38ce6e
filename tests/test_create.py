"""Making a link: one POST per form token, Provet's refusals on the fields, lost answers honest."""

from decimal import Decimal

import pytest
from django.utils import translation

from clinics.provet import client as provet_client
from paylinks.create import LinkDraft, LinkNotCreated, create_link
from paylinks.forms import new_form_token
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus, Prepayment
from paylinks.words import event_words
from sandbox.models import Client as ProvetClientRow
from sandbox.models import PosTransaction
from tests.conftest import add_fault, draft_for


def test_a_link_is_created_in_provet_and_becomes_active(invoice, receptionist):
    link = create_link(draft_for(invoice, receptionist, delivery_method=3, phone="+358401234567"))
    assert link.state == PaymentLink.State.ACTIVE
    assert link.payment_status == PaymentStatus.PENDING
    posted = PosTransaction.objects.get(pk=link.postransaction_id)
    assert posted.amount == invoice.due_sum
    assert posted.invoice_id == invoice.provet_id
    assert (posted.delivery_method, posted.phone) == (3, "+358401234567")
    assert str(posted.external_id) == link.external_id
    assert link.payer_url and link.expires_at
    [event] = link.events.filter(kind=LinkEvent.Kind.CREATED)
    assert event.user == receptionist


def test_the_same_form_token_gives_one_link_and_one_post(invoice, receptionist):
    draft = draft_for(invoice, receptionist)
    first = create_link(draft)
    second = create_link(draft)
    assert first.pk == second.pk
    assert PaymentLink.objects.count() == 1
    assert PosTransaction.objects.filter(invoice_id=invoice.provet_id).count() == 1


def test_provet_s_refusal_lands_on_the_fields_and_leaves_nothing_behind(invoice, receptionist):
    # The snapshot says more is due than Provet knows: Provet itself refuses the amount.
    invoice.due_sum = invoice.due_sum + Decimal("100")
    invoice.save(update_fields=["due_sum"])
    draft = draft_for(invoice, receptionist, amount=invoice.due_sum)
    with pytest.raises(LinkNotCreated) as refused:
        create_link(draft)
    assert "amount" in refused.value.field_errors
    assert refused.value.field_errors["amount"][0].startswith("Provet Cloud: ")
    assert not PaymentLink.objects.exists()
    assert not PosTransaction.objects.filter(invoice_id=invoice.provet_id).exists()


def test_the_same_form_can_be_sent_again_after_a_refusal(invoice, receptionist):
    draft = draft_for(invoice, receptionist, amount=invoice.due_sum + 1)
    with pytest.raises(LinkNotCreated):
        create_link(draft)
    draft.amount = invoice.due_sum
    assert create_link(draft).state == PaymentLink.State.ACTIVE


def test_a_prepayment_link_carries_its_client_and_department(synced_practice, receptionist):
    department = synced_practice.departments.filter(allow_nhp_processing=True).first()
    client = ProvetClientRow.objects.filter(installation__provet_id=4).first()
    link = create_link(
        LinkDraft(
            practice=synced_practice,
            department=department,
            amount=Decimal("80.00"),
            delivery_method=0,
            email="",
            phone="",
            description="Prepayment for surgery",
            duration_minutes=1440,
            return_url="",
            tokenize="ask",
            recurring_model="subscription",
            consent=False,
            created_by=receptionist,
            idempotency_key=new_form_token(),
            client_provet_id=client.id,
            client_name="Client",
            prepayment_description="Prepayment for surgery",
        )
    )
    posted = PosTransaction.objects.get(pk=link.postransaction_id)
    assert posted.invoice_id is None
    assert posted.prepayment_client_id == client.id
    assert posted.prepayment_department_id == department.provet_id
    assert (posted.tokenize, posted.recurring_model) == ("ask", "subscription")
    assert link.prepayment.client_provet_id == client.id


def test_consent_to_save_the_card_is_recorded_with_who_and_when(invoice, receptionist):
    link = create_link(
        draft_for(invoice, receptionist, tokenize="yes", recurring_model="one-off", consent=True)
    )
    assert link.consent_recorded_by == receptionist
    assert link.consent_recorded_at is not None
    assert PosTransaction.objects.get(pk=link.postransaction_id).tokenize == "yes"


def test_a_provet_that_answers_503_leaves_the_link_unknown_never_posted_twice(
    invoice, receptionist
):
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="503")
    link = create_link(draft_for(invoice, receptionist))
    assert link.state == PaymentLink.State.UNKNOWN
    assert "lost" in link.last_error
    assert not PosTransaction.objects.filter(invoice_id=invoice.provet_id).exists()
    assert link.events.filter(kind=LinkEvent.Kind.ERROR).exists()


def test_a_dropped_answer_is_reconciled_at_once_into_the_one_link_provet_made(
    invoice, receptionist
):
    add_fault(invoice.practice, path="postransaction/$", method="POST", kind="drop")
    link = create_link(draft_for(invoice, receptionist))
    [posted] = PosTransaction.objects.filter(invoice_id=invoice.provet_id)
    assert link.state == PaymentLink.State.ACTIVE
    assert link.postransaction_id == posted.pk
    assert link.events.filter(kind=LinkEvent.Kind.RECONCILED).exists()
    assert PaymentLink.objects.count() == 1


def test_an_unreachable_provet_creates_nothing(invoice, receptionist, monkeypatch):
    # A real socket to a closed port: the request never leaves.
    monkeypatch.setattr(provet_client, "default_transport", lambda: None)
    invoice.practice.base_url = "http://127.0.0.1:9/sandbox/4/"
    invoice.practice.save()
    with pytest.raises(LinkNotCreated, match="could not be reached"):
        create_link(draft_for(invoice, receptionist))
    assert not PaymentLink.objects.exists()
    assert not Prepayment.objects.exists()


def test_a_finnish_desk_s_link_is_stored_in_english_and_codes_and_read_in_the_reader_s_language(
    invoice, receptionist
):
    draft = draft_for(invoice, receptionist, delivery_method=2, email="client@example.com")
    with translation.override("fi"):
        link = create_link(draft)

    [event] = link.events.filter(kind=LinkEvent.Kind.CREATED).select_related("link__practice")
    assert event.message == f"{link.amount} EUR, Email only"
    assert event.message_values == {"delivery_method": 2}
    with translation.override("fi"):
        assert event_words(event).title == "Linkki lähetetty (sähköposti)"
    with translation.override("sv"):
        assert "e-post" in event_words(event).title
    assert event_words(event).title == "Link sent by e-mail"

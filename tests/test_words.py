"""The timeline and the statuses in a receptionist's words, never the code's."""

from decimal import Decimal

import pytest
from django.utils import timezone

from paylinks.forms import new_form_token
from paylinks.models import DeliveryMethod, Invoice, LinkEvent, PaymentLink, PaymentStatus
from paylinks.words import delivery_words, event_words
from tests.conftest import make_user

User = LinkEvent.Source.USER
POLLER = LinkEvent.Source.POLLER
WEBHOOK = LinkEvent.Source.WEBHOOK
SYSTEM = LinkEvent.Source.SYSTEM
Kind = LinkEvent.Kind


@pytest.fixture
def riikka(synced_practice):
    user = make_user("riikka", synced_practice)
    user.first_name, user.last_name = "Riikka", "Virtanen"
    user.save()
    return user


def make_link(practice, user, **fields) -> PaymentLink:
    invoice, _ = Invoice.objects.get_or_create(
        practice=practice,
        provet_id=1,
        defaults={"number": "NV-1", "status": 3, "due_sum": 50, "fetched_at": timezone.now()},
    )
    return PaymentLink.objects.create(
        **{
            "practice": practice,
            "invoice": invoice,
            "department": practice.departments.filter(allow_nhp_processing=True).first(),
            "amount": Decimal("50.00"),
            "currency": "EUR",
            "duration_minutes": 60,
            "idempotency_key": new_form_token(),
            "state": PaymentLink.State.ACTIVE,
            "payment_status": PaymentStatus.PENDING,
            "delivery_method": DeliveryMethod.SMS,
            "phone": "+358401234567",
            "created_by": user,
            **fields,
        }
    )


# (kind, source, by a person, old, new, message, link fields and the event's reason)
#   -> (title, who)
CASES = [
    (
        (Kind.CREATED, User, True, "Creating", "Active", "50.00 EUR, SMS only", {}),
        ("Link sent by SMS", "by Riikka Virtanen"),
    ),
    (
        (Kind.CREATED, User, True, "Creating", "Active", "", {"delivery_method": 2}),
        ("Link sent by e-mail", "by Riikka Virtanen"),
    ),
    (
        (Kind.CREATED, User, True, "Creating", "Active", "", {"delivery_method": 1}),
        ("Link sent by SMS and e-mail", "by Riikka Virtanen"),
    ),
    (
        (Kind.CREATED, User, True, "Creating", "Active", "", {"delivery_method": 0}),
        ("Link made, to hand over", "by Riikka Virtanen"),
    ),
    (
        (Kind.CREATED, SYSTEM, False, "Creating", "Active", "", {"sent_automatically": True}),
        ("Sent again automatically by SMS", "Automatically"),
    ),
    (
        (Kind.DELIVERY_CHANGED, POLLER, False, "Not sent", "Sent", "", {}),
        ("Sent by SMS", "Checked automatically"),
    ),
    (
        (Kind.DELIVERY_CHANGED, SYSTEM, False, "Not sent", "Delivery failed", "", {}),
        ("Delivery failed", "Checked automatically"),
    ),
    (
        (Kind.PAYMENT_CHANGED, WEBHOOK, False, "Waiting for payment", "Paid", "", {}),
        ("Paid", "Provet told us"),
    ),
    (
        (Kind.PAYMENT_CHANGED, POLLER, False, "Waiting for payment", "Expired", "", {}),
        ("Expired unpaid", "Checked automatically"),
    ),
    (
        (Kind.PAYMENT_CHANGED, User, True, "Waiting for payment", "Payment failed", "", {}),
        ("Payment failed", "by Riikka Virtanen"),
    ),
    (
        (
            Kind.PAYMENT_CHANGED,
            POLLER,
            False,
            "Waiting for payment",
            "Cancelled by the client",
            "",
            {},
        ),
        ("The client cancelled the payment", "Checked automatically"),
    ),
    ((Kind.PAYMENT_CHANGED, POLLER, False, "1", "5", "", {}), ("Paid", "Checked automatically")),
    (
        (Kind.REFRESHED, User, True, "", "", "No change", {}),
        ("Checked by hand", "by Riikka Virtanen"),
    ),
    (
        (Kind.REISSUED, User, True, "", "", "Replaced by a new link for 50.00 EUR", {}),
        ("Sent again", "by Riikka Virtanen"),
    ),
    (
        (Kind.REISSUED, SYSTEM, False, "", "", "", {"sent_automatically": True}),
        ("Sent again automatically", "Automatically"),
    ),
    (
        (Kind.CANCELLED, User, True, "Active", "Cancelled", "", {}),
        ("Cancelled", "by Riikka Virtanen"),
    ),
    (
        (
            Kind.CANCELLED,
            SYSTEM,
            False,
            "Active",
            "Cancelled",
            "Deleted in Provet Cloud",
            {"reason": LinkEvent.Reason.DELETED_IN_PROVET},
        ),
        ("Cancelled in Provet", "Checked automatically"),
    ),
    (
        (
            Kind.CANCELLED,
            User,
            True,
            "",
            "",
            "Cancelled postransaction 9 in Provet: a duplicate of this link.",
            {"reason": LinkEvent.Reason.DUPLICATE_CANCELLED},
        ),
        ("Duplicate cancelled in Provet", "by Riikka Virtanen"),
    ),
    (
        (Kind.RECONCILED, SYSTEM, False, "Outcome unknown", "Active", "Found in Provet", {}),
        ("Found in Provet", "Checked automatically"),
    ),
    (
        (Kind.RECONCILED, SYSTEM, False, "Creating", "Active", "", {"imported": True}),
        ("Found on the invoice in Provet", "Checked automatically"),
    ),
    (
        (Kind.RECONCILED, User, True, "Outcome unknown", "Active", "Chosen by Riikka", {}),
        ("Matched to its Provet link by hand", "by Riikka Virtanen"),
    ),
    (
        (Kind.ERROR, SYSTEM, False, "Creating", "Outcome unknown", "Provet's answer was lost", {}),
        ("Checking whether Provet made the link", "Automatically"),
    ),
    (
        (Kind.ERROR, SYSTEM, False, "Outcome unknown", "Not created", "No such link", {}),
        ("Not created", "Automatically"),
    ),
    (
        (Kind.ERROR, User, True, "", "", "Provet Cloud would not cancel postransaction 9", {}),
        ("Something went wrong", "by Riikka Virtanen"),
    ),
]


@pytest.mark.parametrize(("event", "words"), CASES)
def test_every_event_the_code_writes_reads_as_a_receptionist_would_say_it(
    synced_practice, riikka, event, words
):
    kind, source, by_person, old, new, message, fields = event
    link_fields = {name: value for name, value in fields.items() if name != "reason"}
    link = make_link(synced_practice, riikka, **link_fields)
    user = riikka if by_person else None
    written = link.event(kind, source, user, old, new, message, reason=fields.get("reason", ""))
    said = event_words(LinkEvent.objects.select_related("link__practice").get(pk=written.pk))
    assert (said.title, said.who) == words
    for code_word in ("Poller", "Webhook", "PayLinks", "→", "Creating"):
        assert code_word not in f"{said.title} {said.detail} {said.who}"


def test_every_kind_of_event_has_words_of_its_own():
    covered = {event[0] for event, _ in CASES}
    assert covered == set(Kind.values)


@pytest.mark.parametrize(
    ("reason", "message", "words"),
    [
        (LinkEvent.Reason.DELETED_IN_PROVET, "Gone", ("Cancelled in Provet", "The client can")),
        (LinkEvent.Reason.REPLACED, "", ("Cancelled", "A new link replaces it.")),
        (
            LinkEvent.Reason.DUPLICATE_CANCELLED,
            "Cancelled 9",
            ("Duplicate cancelled in Provet", "Cancelled 9"),
        ),
        ("", "Deleted in Provet Cloud", ("Cancelled", "Deleted in Provet Cloud")),
    ],
)
def test_a_cancel_reads_by_its_reason_however_its_message_is_worded(
    synced_practice, riikka, reason, message, words
):
    link = make_link(synced_practice, riikka)
    written = link.event(Kind.CANCELLED, User, riikka, message=message, reason=reason)
    said = event_words(LinkEvent.objects.select_related("link__practice").get(pk=written.pk))
    title, detail = words
    assert said.title == title and said.detail.startswith(detail)


def test_the_link_page_timeline_says_what_happened(client, synced_practice, riikka):
    link = make_link(synced_practice, riikka, delivery_method=DeliveryMethod.SMS)
    link.event(Kind.CREATED, User, riikka, "Creating", "Active", "50.00 EUR, SMS only")
    link.event(Kind.DELIVERY_CHANGED, POLLER, None, "Not sent", "Sent")
    link.event(Kind.PAYMENT_CHANGED, WEBHOOK, None, "Waiting for payment", "Paid")
    client.force_login(riikka)
    html = client.get(f"/links/{link.code}/").content.decode()
    timeline = html[html.index('class="timeline"') :]
    for words in (
        "Link sent by SMS",
        "by Riikka Virtanen",
        "Sent by SMS",
        "040 123 4567",  # the phone as the practice's country writes it
        "Checked automatically",
        "Paid",
        "Provet told us",
    ):
        assert words in timeline
    for code_words in ("Creating", "→", "by Poller", "by Webhook", "Payment changed"):
        assert code_words not in timeline


@pytest.mark.parametrize(
    ("method", "status", "words"),
    [
        (DeliveryMethod.SMS, None, "Sending by SMS…"),
        (DeliveryMethod.EMAIL, 2, "Sent by e-mail"),
        (DeliveryMethod.SMS_AND_EMAIL, 3, "Sending by SMS and e-mail failed: check the number"),
        (DeliveryMethod.DONT_SEND, None, "Not sent: hand over the link or the QR code"),
    ],
)
def test_delivery_says_which_way_the_link_went(synced_practice, riikka, method, status, words):
    link = make_link(synced_practice, riikka, delivery_method=method, delivery_status=status)
    assert delivery_words(link).startswith(words)


def test_a_stored_message_is_english_in_the_database_and_the_reader_s_language_on_screen(
    synced_practice, riikka
):
    """Events store messages in English; the page shows them translated, values and all."""
    from django.utils import translation
    from django.utils.translation import gettext_noop

    from paylinks.models import Said
    from paylinks.words import said

    link = make_link(synced_practice, riikka)
    with translation.override("fi"):
        link.event(LinkEvent.Kind.REFRESHED, LinkEvent.Source.USER, message="No change")
        replaced = link.event(
            LinkEvent.Kind.REISSUED,
            LinkEvent.Source.USER,
            message=Said(
                gettext_noop("Replaced by a new link for %(amount)s"),
                {"amount": "1210.66", "currency": "EUR"},
            ),
        )
    replaced.refresh_from_db()
    assert replaced.message == "Replaced by a new link for 1210.66 EUR"
    no_change = link.events.get(kind=LinkEvent.Kind.REFRESHED)
    assert no_change.message == "No change"
    with translation.override("fi"):
        assert said(no_change) not in ("", "No change")
        shown = said(replaced)
        assert "1\xa0210,66\xa0€" in shown and "Replaced" not in shown
    assert said(replaced) == "Replaced by a new link for €1,210.66"

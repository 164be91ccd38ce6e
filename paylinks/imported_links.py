"""Links made in Provet itself, or by another tool, brought in beside PayLinks' own."""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from clinics.models import Practice
from clinics.provet import ProvetClient, ProvetNotFound
from clinics.provet import types as provet
from paylinks.models import Invoice, LinkEvent, PaymentLink


def import_links_made_elsewhere(
    practice: Practice, client: ProvetClient, invoice: Invoice, remote: provet.Invoice
) -> None:
    """Links made in Provet itself (or by another tool) appear beside PayLinks' own.

    While one of our own attempts has an unknown outcome, nothing is imported: the reconciler
    must first decide whether a postransaction is that attempt's. Once it has left the choice
    to a person (needs review), everything but the candidates is imported, so the invoice's
    other real links are seen, and count, meanwhile.
    """
    undecided = invoice.links.filter(state__in=PaymentLink.UNDECIDED)
    if undecided.filter(needs_review=False).exists():
        return
    known = set(
        PaymentLink.objects.filter(practice=practice, postransaction_id__isnull=False).values_list(
            "postransaction_id", flat=True
        )
    )
    for candidates in undecided.values_list("review_candidates", flat=True):
        known.update(candidates)
    for url in remote.postransactions:
        if provet.id_from_url(url) in known:
            continue
        try:
            posted = client.get_postransaction_by_url(url)
        except ProvetNotFound:
            continue
        if posted.payment_link is None or invoice.department is None:
            continue  # a card-terminal or cash transaction, not a payment link
        try:
            with transaction.atomic():
                link = PaymentLink.objects.create(
                    practice=practice,
                    invoice=invoice,
                    department=invoice.department,
                    client_name=invoice.client_name,
                    amount=posted.amount,
                    currency=practice.currency,
                    duration_minutes=0,
                    idempotency_key=f"provet:{practice.pk}:{posted.id}",
                    imported=True,
                )
                link.adopt(
                    posted,
                    source=LinkEvent.Source.SYSTEM,
                    kind=LinkEvent.Kind.RECONCILED,
                    message=gettext_noop("Found on the invoice in Provet (made outside PayLinks)"),
                )
        except IntegrityError:
            continue  # imported meanwhile by another request

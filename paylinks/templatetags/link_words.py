"""A link's statuses in a receptionist's words, for the pages (`{% load link_words %}`).

`link|status_words` is (words, tone), the tone one of waiting, good, bad or neutral.
"""

from django import template

from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink, PaymentStatus

register = template.Library()


@register.filter
def status_words(link: PaymentLink) -> tuple[str, str]:
    """The status in a receptionist's words, and its tone (waiting, good, bad, neutral)."""
    if link.state == PaymentLink.State.CREATING:
        return "Creating…", "waiting"
    if link.state == PaymentLink.State.UNKNOWN:
        if link.needs_review:
            return "Needs checking: several Provet links match", "bad"
        return "Checking with Provet…", "waiting"
    if link.state == PaymentLink.State.FAILED:
        return "Not created", "bad"
    if link.payment_status == PaymentStatus.ACCEPTED:
        return "Paid", "good"
    if link.cancelled_at:
        return "Cancelled", "neutral"
    if link.is_replaced:
        return "Replaced by a new link", "neutral"
    if link.invoice_id and link.invoice and link.invoice.due_sum <= 0:
        return "Superseded: the invoice is paid", "neutral"
    if link.payment_status is None:
        return "Waiting for payment", "waiting"
    tone = "waiting" if link.payment_status == PaymentStatus.PENDING else "bad"
    return str(PaymentStatus(link.payment_status).label), tone


@register.filter
def delivery_words(link: PaymentLink) -> str:
    """How the link is reaching the client, in a receptionist's words."""
    if link.delivery_method == DeliveryMethod.DONT_SEND:
        return "Not sent: hand over the link or the QR code"
    channel = DeliveryMethod(link.delivery_method).label
    if link.delivery_status is None or link.delivery_status == DeliveryStatus.NOT_SENT:
        return f"{channel}: sending…"
    if link.delivery_status == DeliveryStatus.SENT:
        return f"{channel}: sent"
    return f"{channel}: delivery failed, check the number or address"

"""The domain's words: a link and its history as a receptionist says them, in the reader's
language, for the pages (`{% load link_words %}`), the API, the CSV and the notices.

`link|status_words` is (words, tone), the tone one of waiting, good, bad or neutral;
`event|event_words` is what a timeline entry says happened, and who or what noticed.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from clinics import formats, phones
from paylinks.models import (
    DeliveryMethod,
    DeliveryStatus,
    DriftFinding,
    LinkEvent,
    PaymentLink,
    PaymentStatus,
    money_keys,
)


def status_words(link: PaymentLink) -> tuple[str, str]:
    """The status in a receptionist's words, and its tone (waiting, good, bad, neutral)."""
    if link.state == PaymentLink.State.CREATING:
        return _("Creating…"), "waiting"
    if link.state == PaymentLink.State.UNKNOWN:
        if link.needs_review:
            return _("Needs checking: several Provet links match"), "bad"
        return _("Checking with Provet…"), "waiting"
    if link.state == PaymentLink.State.FAILED:
        return _("Not created"), "bad"
    if link.payment_status == PaymentStatus.ACCEPTED:
        return _("Paid"), "good"
    if link.cancelled_at:
        return _("Cancelled"), "neutral"
    if link.is_replaced:
        return _("Replaced by a new link"), "neutral"
    if link.invoice_id and link.invoice and link.invoice.due_sum <= 0:
        return _("Superseded: the invoice is paid"), "neutral"
    if link.payment_status is None:
        return _("Waiting for payment"), "waiting"
    tone = "waiting" if link.payment_status == PaymentStatus.PENDING else "bad"
    return str(PaymentStatus(link.payment_status).label), tone


def _channel(method: int) -> str:
    """How a link travels, as it ends "sent by …"."""
    if method == DeliveryMethod.SMS:
        return _("SMS")
    if method == DeliveryMethod.EMAIL:
        return _("e-mail")
    if method == DeliveryMethod.SMS_AND_EMAIL:
        return _("SMS and e-mail")
    return ""


def delivery_words(link: PaymentLink) -> str:
    """How the link is reaching the client, in a receptionist's words."""
    if link.delivery_method == DeliveryMethod.DONT_SEND:
        if link.payment_status == PaymentStatus.ACCEPTED:
            return _("Not sent: handed over at the desk")
        return _("Not sent: hand over the link or the QR code")
    channel = {"channel": _channel(link.delivery_method)}
    if link.delivery_status is None or link.delivery_status == DeliveryStatus.NOT_SENT:
        return _("Sending by %(channel)s…") % channel
    if link.delivery_status == DeliveryStatus.SENT:
        return _("Sent by %(channel)s") % channel
    return _("Sending by %(channel)s failed: check the number or address") % channel


# Check now: what it found


@dataclass(frozen=True)
class Seen:
    """What a person saw of a link before asking Provet about it."""

    state: str
    payment_status: int | None
    delivery_status: int | None
    cancelled: bool
    needs_review: bool

    @classmethod
    def of(cls, link: PaymentLink) -> "Seen":
        return cls(
            link.state,
            link.payment_status,
            link.delivery_status,
            bool(link.cancelled_at),
            link.needs_review,
        )


def what_changed(before: Seen, link: PaymentLink) -> list[str]:
    """What asking Provet changed about `link`, one sentence per change; [] when nothing did."""
    found = []
    if before.state == PaymentLink.State.UNKNOWN and link.state == PaymentLink.State.ACTIVE:
        found.append(_("Found in Provet: the link exists."))
    if before.state != PaymentLink.State.FAILED and link.state == PaymentLink.State.FAILED:
        found.append(_("Provet has no such link: it was not created."))
    if link.needs_review and not before.needs_review:
        found.append(_("Several Provet links could be this one: a manager decides."))
    if link.cancelled_at and not before.cancelled:
        found.append(_("Cancelled in Provet: it can no longer be paid."))
    if link.delivery_status != before.delivery_status:
        if link.delivery_status == DeliveryStatus.SENT:
            found.append(_("Sent by %(channel)s.") % {"channel": _channel(link.delivery_method)})
        elif link.delivery_status == DeliveryStatus.FAILED:
            found.append(_("Delivery failed."))
    if link.payment_status != before.payment_status:
        if link.payment_status == PaymentStatus.ACCEPTED and link.paid_at:
            found.append(_("Paid at %(time)s.") % {"time": clock(link.paid_at, link)})
        elif link.payment_status == PaymentStatus.EXPIRED:
            found.append(_("Expired unpaid."))
        elif link.payment_status == PaymentStatus.FAILED:
            found.append(_("Payment failed."))
        elif link.payment_status == PaymentStatus.ABORTED:
            found.append(_("The client cancelled the payment."))
    return found


def clock(moment: dt.datetime, link: PaymentLink) -> str:
    """A time of day as the practice's clocks show it, written the reader's way (10:41, 10.41)."""
    return formats.time(timezone.localtime(moment, link.practice.zone))


# The timeline


@dataclass(frozen=True)
class EventWords:
    title: str
    detail: str
    who: str


def event_words(event: LinkEvent) -> EventWords:
    """What a timeline entry says: what happened, a detail, and who or what noticed it.

    Covers every event the code writes (`PaymentLink.event`, `adopt`, `mark`,
    `record_cancelled` and their callers)."""
    link = event.link
    kind = event.kind
    title, detail = _("Something happened"), said(event)
    if kind == LinkEvent.Kind.CREATED:
        title, detail = _created(event, link)
    elif kind == LinkEvent.Kind.RECONCILED:
        title, detail = _found(event, link)
    elif kind == LinkEvent.Kind.DELIVERY_CHANGED:
        status = _value(DeliveryStatus, event.new_value)
        if status == DeliveryStatus.SENT:
            title = _("Sent by %(channel)s") % {"channel": _channel(link.delivery_method)}
            country = link.practice.country
            detail = ", ".join(phones.national(address, country) for address in link.sent_to)
        elif status == DeliveryStatus.FAILED:
            title, detail = _("Delivery failed"), _("Check the number or address.")
        else:
            title, detail = _("Waiting to be sent"), ""
    elif kind == LinkEvent.Kind.PAYMENT_CHANGED:
        title, detail = _payment(_value(PaymentStatus, event.new_value), link)
    elif kind == LinkEvent.Kind.REFRESHED:
        title = _("Checked by hand")
        detail = said(event)
    elif kind == LinkEvent.Kind.REISSUED:
        # The event is on the link sent again; the automatic follow-up writes it as PayLinks.
        automatic = event.source == LinkEvent.Source.SYSTEM
        title = _("Sent again automatically") if automatic else _("Sent again")
    elif kind == LinkEvent.Kind.CANCELLED:
        title, detail = _cancelled(event)
    elif kind == LinkEvent.Kind.ERROR:
        title = _problem(event)
    return EventWords(title, detail, _who(event))


def _created(event: LinkEvent, link: PaymentLink) -> tuple[str, str]:
    # Events written before they kept the delivery method's code: the link's is the same.
    method = event.message_values.get("delivery_method", link.delivery_method)
    if method == DeliveryMethod.DONT_SEND:
        title = _("Link made, to hand over")
    elif link.sent_automatically:
        title = _("Sent again automatically by %(channel)s")
    else:
        title = _("Link sent by %(channel)s")
    title = title % {"channel": _channel(method)}
    details = [_("For %(amount)s") % {"amount": formats.money(link.amount, link.currency)}]
    if link.replaces_id:
        details.append(_("in place of an earlier link"))
    if link.consent_recorded_at:
        details.append(_("the client agreed to saving the card"))
    return title, ", ".join(details)


def _found(event: LinkEvent, link: PaymentLink) -> tuple[str, str]:
    if event.source == LinkEvent.Source.USER:
        return _("Matched to its Provet link by hand"), said(event)
    if link.imported:
        return _("Found on the invoice in Provet"), _("Someone made it in Provet itself.")
    return _("Found in Provet"), _("The link exists: Provet's answer had been lost on the way.")


def _payment(status: int | None, link: PaymentLink) -> tuple[str, str]:
    if status == PaymentStatus.ACCEPTED:
        return _("Paid"), formats.money(link.amount, link.currency)
    if status == PaymentStatus.EXPIRED:
        return _("Expired unpaid"), ""
    if status == PaymentStatus.FAILED:
        return _("Payment failed"), _("The client can try again with a new link.")
    if status == PaymentStatus.ABORTED:
        return _("The client cancelled the payment"), ""
    return _("Waiting for payment"), ""


def _cancelled(event: LinkEvent) -> tuple[str, str]:
    if event.reason == LinkEvent.Reason.DELETED_IN_PROVET:
        return _("Cancelled in Provet"), _("The client can no longer pay with it.")
    if event.reason == LinkEvent.Reason.REPLACED:
        return _("Cancelled"), _("A new link replaces it.")
    if event.reason == LinkEvent.Reason.DUPLICATE_CANCELLED:
        return _("Duplicate cancelled in Provet"), said(event)
    return _("Cancelled"), said(event) or _("The client can no longer pay with it.")


def _problem(event: LinkEvent) -> str:
    state = _value(PaymentLink.State, event.new_value)
    if state == PaymentLink.State.UNKNOWN:
        return _("Checking whether Provet made the link")
    if state == PaymentLink.State.FAILED:
        return _("Not created")
    return _("Something went wrong")


def _who(event: LinkEvent) -> str:
    if event.user is not None:
        return _("by %(name)s") % {"name": formats.person(event.user)}
    if event.source == LinkEvent.Source.WEBHOOK:
        return _("Provet told us")
    if event.source == LinkEvent.Source.POLLER or (
        event.source == LinkEvent.Source.SYSTEM
        and event.kind
        in (
            LinkEvent.Kind.PAYMENT_CHANGED,
            LinkEvent.Kind.DELIVERY_CHANGED,
            LinkEvent.Kind.CANCELLED,
            LinkEvent.Kind.RECONCILED,
        )
    ):
        return _("Checked automatically")
    if event.source == LinkEvent.Source.SYSTEM:
        return _("Automatically")
    return _("by staff")


def _value(choices, written: str):
    """The choice an event's old or new value names. Events hold a status's label in the
    language of whoever caused the change (or its code), so each language's label is known."""
    return _labels(choices).get(written.strip())


@cache
def _labels(choices) -> dict[str, object]:
    # A cache of constants (every language's labels), not state: safe in process memory.
    known: dict[str, object] = {}
    for value in choices:
        known[str(value.value)] = value
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                known[str(value.label)] = value
    return known


def said(stored: "LinkEvent | DriftFinding") -> str:
    """A stored message (an event's, a drift finding's) in the reader's language. Messages are
    stored in English; the fixed ones are in the catalogs (gettext_noop where they are written),
    and one with values in it keeps its template and values (`Said`), amounts shown in the
    reader's money format."""
    if stored.message_template:
        values = dict(stored.message_values)
        currency = values.pop("currency", None)
        for key in money_keys(values) if currency else ():
            values[key] = formats.money(Decimal(values[key]), currency)
        return _(stored.message_template) % values
    return _(stored.message) if stored.message else ""

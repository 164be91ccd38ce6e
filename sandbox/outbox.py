"""The messages Provet would send: an SMS and/or an email carrying the payer's link."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.models import (
    DeliveryMethod,
    Installation,
    OutboxMessage,
    PhoneNumber,
    PosTransaction,
)


def queue(pt: PosTransaction, url: str, deliver_at: datetime) -> list[OutboxMessage]:
    installation = pt.installation
    method = pt.delivery_method
    amount = f"{pt.amount:.2f} {installation.currency}"
    what = pt.description or f"Payment to {installation.name}"
    until = pt.expiration_time.astimezone(ZoneInfo(installation.timezone))
    messages = []
    if method in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.EMAIL_ONLY):
        messages.append(
            OutboxMessage(
                channel=OutboxMessage.Channel.EMAIL,
                recipient=pt.email,
                subject=f"Payment request from {installation.name}",
                text=(
                    f"Hello,\n\n{what}\nAmount: {amount}\n\nPay securely here: {url}\n\n"
                    f"The link is valid until {until:%d.%m.%Y %H:%M}.\n\n{installation.name}"
                ),
            )
        )
    if method in (DeliveryMethod.SMS_AND_EMAIL, DeliveryMethod.SMS_ONLY):
        undeliverable = PhoneNumber.objects.filter(
            client__installation=installation, phone_number=pt.phone, undeliverable=True
        ).exists()
        messages.append(
            OutboxMessage(
                channel=OutboxMessage.Channel.SMS,
                recipient=pt.phone,
                text=f"{installation.name}: {what}, {amount}. Pay here: {url}",
                undeliverable=undeliverable,
            )
        )
    for message in messages:
        message.installation = installation
        message.postransaction = pt
        message.created = pt.created
        message.deliver_at = deliver_at
    return OutboxMessage.objects.bulk_create(messages)


def deliver_due(installation: Installation, now: datetime) -> None:
    due = OutboxMessage.objects.filter(
        installation=installation, status=OutboxMessage.Status.QUEUED, deliver_at__lte=now
    )
    due.filter(undeliverable=True).update(status=OutboxMessage.Status.FAILED)
    due.filter(undeliverable=False).update(status=OutboxMessage.Status.SENT)

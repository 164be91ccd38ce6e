"""Cancelling a link: its postransaction is deleted in Provet, so it can no longer be paid."""

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinics.provet import ProvetClient, ProvetNotFound, ProvetValidationError
from clinics.provet.types import PosTransaction
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus


class CannotCancel(Exception):
    pass


@dataclass(frozen=True)
class Refused:
    """Provet would not delete a postransaction: what it says of it now (None once it is
    gone), and its refusal."""

    posted: PosTransaction | None
    error: ProvetValidationError

    @property
    def reasons(self) -> str:
        return "; ".join(m for ms in self.error.flat_errors().values() for m in ms)


def delete_in_provet(client: ProvetClient, postransaction_id: int) -> Refused | None:
    """Delete the postransaction in Provet, so nobody can pay it; one already gone is the
    outcome wanted. Provet refuses to delete a completed payment: then the postransaction is
    read again, to show what really happened. Raises ProvetError when Provet can't answer."""
    try:
        client.delete_postransaction(postransaction_id)
    except ProvetNotFound:
        return None
    except ProvetValidationError as error:
        try:
            return Refused(client.get_postransaction(postransaction_id), error)
        except ProvetNotFound:
            return Refused(None, error)
    return None


def cancel_link(
    link: PaymentLink,
    *,
    user,
    message: str = gettext_noop("Cancelled by staff"),
    source: str = LinkEvent.Source.USER,
    reason: str = "",
) -> None:
    """Delete the postransaction in Provet so it can no longer be paid.

    Raises CannotCancel for a link that is already over, ProvetError when Provet can't answer.
    """
    if not link.can_cancel:
        raise CannotCancel(_("Only a link that is waiting for payment can be cancelled."))
    assert link.postransaction_id is not None  # can_cancel says so
    with link.practice.provet_client() as client:
        refused = delete_in_provet(client, link.postransaction_id)
    if refused is not None:
        if refused.posted is not None:
            link.record_status(refused.posted, source=source, user=user)
        if link.payment_status == PaymentStatus.ACCEPTED:
            raise CannotCancel(_("The client has already paid this link.")) from refused.error
        raise CannotCancel(
            _("Provet Cloud would not cancel it: %(reasons)s") % {"reasons": refused.reasons}
        ) from refused.error
    link.record_cancelled(user=user, source=source, message=message, reason=reason)

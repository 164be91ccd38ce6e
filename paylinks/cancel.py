"""Cancelling a link: its postransaction is deleted in Provet, so it can no longer be paid."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinics.provet import ProvetNotFound, ProvetValidationError
from paylinks.models import LinkEvent, PaymentLink, PaymentStatus


class CannotCancel(Exception):
    pass


def cancel_link(
    link: PaymentLink,
    *,
    user,
    message: str = gettext_noop("Cancelled by staff"),
    source: str = LinkEvent.Source.USER,
) -> None:
    """Delete the postransaction in Provet so it can no longer be paid.

    Raises CannotCancel for a link that is already over, ProvetError when Provet can't answer.
    """
    if not link.can_cancel:
        raise CannotCancel(_("Only a link that is waiting for payment can be cancelled."))
    assert link.postransaction_id is not None  # can_cancel says so
    with link.practice.provet_client() as client:
        try:
            client.delete_postransaction(link.postransaction_id)
        except ProvetNotFound:
            pass  # already gone in Provet: the outcome the person wanted
        except ProvetValidationError as error:
            # Provet refuses to delete a completed payment: show what really happened.
            posted = client.get_postransaction(link.postransaction_id)
            link.record_status(posted, source=source, user=user)
            if link.payment_status == PaymentStatus.ACCEPTED:
                raise CannotCancel(_("The client has already paid this link.")) from error
            reasons = "; ".join(m for ms in error.flat_errors().values() for m in ms)
            raise CannotCancel(
                _("Provet Cloud would not cancel it: %(reasons)s") % {"reasons": reasons}
            ) from error
    link.record_cancelled(user=user, source=source, message=message)

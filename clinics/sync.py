"""What admins do to a practice's Provet connection: test it, and bring its departments in."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.models import Department, Practice
from clinics.provet import ProvetError
from clinics.provet.errors import explain
from clinics.provet.types import id_from_url


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str


def try_connection(practice: Practice) -> ConnectionReport:
    if not practice.has_credentials:
        return ConnectionReport(False, _("No credentials are stored for this practice."))
    try:
        with practice.provet_client() as client:
            departments = client.list_departments()
            user_id = id_from_url(practice.provet_user_url)
            user = client.get_user(user_id) if user_id else None
    except ProvetError as error:
        return ConnectionReport(False, explain(error))
    if user is None:
        return ConnectionReport(
            False,
            _(
                "Connected (%(count)s departments), but no integration user URL is set: "
                "links need one as their creator."
            )
            % {"count": len(departments)},
        )
    connected = _("Connected: %(count)s departments; links will be created by %(name)s") % {
        "count": len(departments),
        "name": f"{user.first_name} {user.last_name}",
    }
    return ConnectionReport(True, connected.rstrip() + ".")


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int


def sync_departments(practice: Practice) -> SyncResult:
    """Create or update the practice's departments from Provet (raises ProvetError)."""
    with practice.provet_client() as client:
        remote = client.list_departments()
    now = timezone.now()
    created = updated = 0
    with transaction.atomic():
        for department in remote:
            _department, was_created = Department.objects.update_or_create(
                practice=practice,
                provet_id=department.id,
                defaults={
                    "name": department.name,
                    "allow_nhp_processing": department.allow_nhp_processing,
                    "synced_at": now,
                },
            )
            if was_created:
                created += 1
            else:
                updated += 1
    return SyncResult(created=created, updated=updated)

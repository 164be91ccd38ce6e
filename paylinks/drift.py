"""The nightly drift check: where invoices and links disagree, a person should look."""

from django.db.models import QuerySet

from paylinks.models import DriftFinding


def open_findings(practices) -> QuerySet[DriftFinding]:
    """The mismatches the last check found and no later check has seen resolved."""
    return DriftFinding.objects.filter(
        practice__in=practices, resolved_at__isnull=True
    ).select_related("practice", "invoice", "link")

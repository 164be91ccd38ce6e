"""Connecting a sandbox installation as a practice: for the demo, the tests and the benchmarks."""

from django.db import transaction

from clinics.models import Practice


@transaction.atomic
def connect_sandbox_installation(installation: dict, base_url: str) -> Practice:
    """The practice for one installation as `sandbox_seed --json` describes it, served under
    `base_url`; made once, brought up to date after that."""
    root = f"{base_url.rstrip('/')}/sandbox/{installation['provet_id']}/"
    practice, _ = Practice.objects.update_or_create(
        base_url=root,
        defaults={
            "name": installation["name"],
            "provet_id": installation["provet_id"],
            "currency": installation["currency"],
            "country": installation["country"],
            "timezone": installation["timezone"],
            "provet_user_url": f"{root}api/0.1/user/{installation['integration_user_id']}/",
            "default_return_url": "",
            "auth_scheme": Practice.AuthScheme.OAUTH2,
            "client_id": installation["client_id"],
        },
    )
    practice.client_secret = installation["client_secret"]
    practice.api_token = installation["legacy_token"]
    practice.save()
    return practice

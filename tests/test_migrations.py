"""Migrations that change data: what they leave behind on a database with history."""

import uuid

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from paylinks.create import create_link
from paylinks.models import LinkEvent, PaymentLink
from tests.conftest import draft_for

BEFORE = [("paylinks", "0007_dashboard_indexes")]
AFTER = [("paylinks", "0008_one_live_replacement")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_two_live_replacements_of_one_link_become_one_and_a_link_of_its_own(
    transactional_db, invoice, receptionist
):
    old = create_link(draft_for(invoice, receptionist, amount=1))
    first = create_link(draft_for(invoice, receptionist, amount=1, replaces=old))
    apps = migrate(BEFORE)
    # What "Send again" pressed twice could make before the constraint.
    Link = apps.get_model("paylinks", "PaymentLink")
    second = Link.objects.get(pk=first.pk)
    second.pk, second.code, second.idempotency_key = None, uuid.uuid4(), "second-press"
    second.postransaction_id = None
    second.save()
    second_pk = second.pk

    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert list(PaymentLink.objects.filter(replaces=old)) == [first]
    assert PaymentLink.objects.get(pk=second_pk).replaces is None
    event = LinkEvent.objects.get(link_id=second_pk)
    assert "stands alone" in event.message


def test_cancels_told_apart_by_their_english_message_get_it_as_their_reason(
    transactional_db, invoice, receptionist
):
    link = create_link(draft_for(invoice, receptionist))
    apps = migrate([("paylinks", "0015_drift_message_values")])
    Event = apps.get_model("paylinks", "LinkEvent")
    messages = [
        "Deleted in Provet Cloud",
        "Cancelled to be replaced by a new link",
        "Cancelled postransaction 9 in Provet: a duplicate of this link.",
        "Cancelled by staff",
    ]
    written = [
        Event.objects.create(link_id=link.pk, kind="cancelled", source="user", message=message).pk
        for message in messages
    ]
    # Not a cancel: the same words don't make it one.
    other = Event.objects.create(
        link_id=link.pk, kind="error", source="system", message="Deleted in Provet Cloud"
    ).pk

    migrate([("paylinks", "0016_event_reason")])
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    reasons = [LinkEvent.objects.get(pk=pk).reason for pk in written]
    assert reasons == ["deleted_in_provet", "replaced", "duplicate_cancelled", ""]
    assert LinkEvent.objects.get(pk=other).reason == ""


def test_existing_events_announce_what_their_new_value_says(
    transactional_db, invoice, receptionist
):
    link = create_link(draft_for(invoice, receptionist))
    apps = migrate([("paylinks", "0016_event_reason")])
    Event = apps.get_model("paylinks", "LinkEvent")
    apps.get_model("paylinks", "PaymentLink").objects.filter(pk=link.pk).update(
        cancelled_at=timezone.now()
    )
    Event.objects.filter(link_id=link.pk).delete()
    written = [
        ("created", "Active", "", ""),
        ("delivery", "Not sent", "", ""),
        ("delivery", "Toimitus epäonnistui", "", ""),  # a Finnish desk's words, once
        ("payment", "Expired", "", ""),
        ("payment", "5", "", ""),
        ("payment", "Payment failed", "", ""),
        ("cancelled", "Cancelled", "", ""),
        ("cancelled", "", "Cancelled postransaction 9 in Provet", "duplicate_cancelled"),
        ("reissued", "", "", ""),
        ("error", "Outcome unknown", "Several Provet links could be this one (1, 2).", ""),
        ("error", "Not created", "Provet has no such link", ""),
    ]
    pks = [
        Event.objects.create(
            link_id=link.pk, kind=kind, source="poller", new_value=new, message=msg, reason=reason
        ).pk
        for kind, new, msg, reason in written
    ]

    migrate([("paylinks", "0017_event_announces")])
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert [LinkEvent.objects.get(pk=pk).announces for pk in pks] == [
        "link.created",
        "",
        "link.delivery_failed",
        "link.expired",
        "link.paid",
        "",
        "link.cancelled",
        "",
        "link.replaced",
        "link.needs_review",
        "",
    ]

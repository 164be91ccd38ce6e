"""Every django-q2 schedule is declared in paylinks/schedules.py and synced after migrate."""

from pathlib import Path

from django_q.models import Schedule

from paylinks.schedules import SCHEDULES, ours, sync_schedules

MIGRATIONS = Path(__file__).resolve().parent.parent / "paylinks" / "migrations"


def test_migrate_made_each_listed_schedule_once(db):
    for scheduled in SCHEDULES:
        assert Schedule.objects.filter(name=scheduled.name, func=scheduled.func).count() == 1
    assert Schedule.objects.filter(ours()).count() == len(SCHEDULES)


def test_syncing_again_changes_nothing(db):
    before = list(Schedule.objects.order_by("name").values())
    sync_schedules()
    assert list(Schedule.objects.order_by("name").values()) == before


def test_a_changed_schedule_is_put_right_and_one_no_longer_listed_is_removed(db):
    Schedule.objects.filter(func="paylinks.tasks.poll").update(minutes=5)
    Schedule.objects.create(
        name="Old job", func="paylinks.tasks.gone", schedule_type="I", minutes=1
    )
    Schedule.objects.create(name="Someone else's", func="other.job", schedule_type="I", minutes=1)
    sync_schedules()
    assert Schedule.objects.get(func="paylinks.tasks.poll").minutes == 1
    assert not Schedule.objects.filter(name="Old job").exists()
    assert Schedule.objects.filter(name="Someone else's").exists()


def test_no_migration_carries_a_schedule():
    for migration in MIGRATIONS.glob("0*.py"):
        assert '"Schedule"' not in migration.read_text(), migration.name


def test_automatic_follow_up_runs_every_five_minutes(db):
    schedule = Schedule.objects.get(func="paylinks.tasks.follow_up_everywhere")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 5)


def test_automatic_follow_up_queues_nothing_while_no_practice_has_it_on(
    practice, django_assert_max_num_queries
):
    from django_q.models import OrmQ

    from paylinks.tasks import follow_up_everywhere

    with django_assert_max_num_queries(1):
        assert follow_up_everywhere() == 0
    assert not OrmQ.objects.exists()

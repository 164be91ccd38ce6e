"""Many processes, one database: the web flow and a real django-q2 worker at once.

On SQLite (a file, as in the demo) they must wait for each other, never answer "database is
locked"; on PostgreSQL the same flow runs as a check that nothing else breaks. The worker is a
`manage.py qcluster` process on the test database; the app reaches the sandbox over HTTP at the
live server, as the worker does.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client as DjangoClient
from django_q.conf import Conf
from django_q.models import OrmQ, Task

from clinics.models import Membership
from clinics.sync import sync_departments
from paylinks.create import create_link
from paylinks.invoices import refresh_invoice
from paylinks.polling import poll_due_links
from sandbox.models import Invoice as ProvetInvoice
from tests.conftest import database_url, draft_for, form_data, make_practice, make_user

ROOT = Path(__file__).resolve().parent.parent
WEBHOOKS = 300


@pytest.fixture
def live_practice(transactional_db, seeded, live_server):
    practice = make_practice(seeded[0], live_server.url)
    sync_departments(practice)
    return practice


def start_qcluster(log: Path) -> subprocess.Popen:
    """`manage.py qcluster` with two workers on the test database, in a process group of its
    own (as systemd gives a service), writing to `log`."""
    env = {**os.environ, "DATABASE_URL": database_url(connection), "Q_WORKERS": "2"}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def worker(live_practice, monkeypatch, tmp_path):
    """A qcluster with two workers on the test database; tasks go to it, not run inline."""
    monkeypatch.setattr(Conf, "SYNC", False)
    log = tmp_path / "qcluster.log"
    process = start_qcluster(log)
    yield log
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def payable_invoices(practice, count: int) -> list:
    rows = ProvetInvoice.objects.filter(
        installation__provet_id=practice.provet_id,
        status=3,
        credit_note=False,
        due_sum__gt=0,
        department__allow_nhp_processing=True,
    ).order_by("id")[:count]
    return [row.id for row in rows]


def test_the_web_and_a_worker_share_the_database_without_lock_errors(live_practice, worker):
    people = [make_user(f"desk{n}", live_practice, Membership.Role.RECEPTION) for n in range(3)]
    invoice_ids = payable_invoices(live_practice, 6)
    watched = create_link(draft_for(refresh_invoice(live_practice, invoice_ids[0]), people[0]))
    answers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def desk(person, provet_id):
        client = DjangoClient()
        client.force_login(person)
        page = client.get(f"/invoices/{provet_id}/")
        made = client.post(f"/invoices/{provet_id}/", form_data(page, delivery_method="0"))
        statuses = [page.status_code, made.status_code]
        for _ in range(5):  # the link page's live status: each asks the worker to look
            statuses.append(client.get(f"/links/{watched.code}/status/").status_code)
        statuses.append(client.post(f"/links/{watched.code}/check/").status_code)
        with lock:
            answers.extend(statuses)

    def provet(ids):
        client = DjangoClient()
        for n in range(WEBHOOKS):
            url = f"/webhooks/provet/{live_practice.webhook_secret}/"
            status = client.post(url, {"invoice_id": str(ids[n % len(ids)])}).status_code
            with lock:
                answers.append(status)

    def poller():
        for _ in range(3):
            poll_due_links()

    jobs = [
        *[(desk, (person, invoice_ids[1 + n])) for n, person in enumerate(people)],
        (provet, (invoice_ids,)),
        (provet, (list(reversed(invoice_ids)),)),
        (poller, ()),
    ]

    def run(job, args):
        try:
            job(*args)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors
    assert len(answers) == 2 * WEBHOOKS + 8 * len(people)
    assert max(answers) < 500, sorted(set(answers))
    deadline = time.monotonic() + 60
    while OrmQ.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not OrmQ.objects.exists(), "the worker did not finish its tasks"
    assert Task.objects.filter(success=True).exists()
    assert list(Task.objects.filter(success=False).values_list("result", flat=True)) == []
    assert "database is locked" not in worker.read_text()

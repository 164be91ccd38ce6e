"""A qcluster stops within 30 s while the poll task runs, whether systemd signals its whole
process group or someone signals its main process alone (paylinks/shutdown.py)."""

import os
import signal
import time

import pytest
from django_q.conf import Conf
from django_q.tasks import async_task

from tests.test_processes import live_practice, start_qcluster  # noqa: F401 (a fixture)

STOP_WITHIN = 30


@pytest.fixture
def cluster(live_practice, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setattr(Conf, "SYNC", False)
    log = tmp_path / "qcluster.log"
    process = start_qcluster(log)
    yield process, log
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("whole_group", [True, False], ids=["group", "main process"])
def test_a_cluster_stops_within_30_seconds_while_the_poll_task_runs(cluster, whole_group):
    process, log = cluster
    async_task("paylinks.tasks.poll")
    assert wait_for(lambda: "'paylinks.tasks.poll'" in log.read_text(), 30), log.read_text()
    assert wait_for(lambda: "'paylinks.tasks.poll_practice'" in log.read_text(), 30)
    time.sleep(2)  # into the poll task's minute, between its ticks

    if whole_group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=STOP_WITHIN)

    assert wait_for(lambda: not group_alive(process.pid), 5), "a cluster process outlived it"
    text = log.read_text()
    assert "has stopped" in text
    assert "Traceback" not in text

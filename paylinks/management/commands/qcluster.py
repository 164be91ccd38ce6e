"""django-q2's `qcluster`, made to stop cleanly when its whole process group gets SIGTERM.

It takes the place of django-q2's own command (paylinks comes before django_q in
INSTALLED_APPS); paylinks/shutdown.py says why and how.
"""

import os

from django_q import cluster
from django_q.management.commands import qcluster
from django_q.signals import post_spawn

from paylinks import shutdown


class Command(qcluster.Command):
    def handle(self, *args, **options):
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]  # as django-q2's does
        start_sentinel = cluster.Sentinel.start

        def shielded_start(sentinel):
            shutdown.shield_sentinel()
            start_sentinel(sentinel)

        cluster.Sentinel.start = shielded_start  # in this process, so the sentinel's fork has it
        post_spawn.connect(_guard_worker, dispatch_uid="paylinks-guard-worker")
        q = cluster.Cluster()
        shutdown.take_over_main(q)
        q.start()
        if options.get("run_once", False):
            q.stop()


def _guard_worker(sender, proc_name, **kwargs):
    shutdown.guard_worker()

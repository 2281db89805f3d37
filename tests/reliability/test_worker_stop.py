"""SIGTERM stops a real qcluster (ORM broker on PostgreSQL), and lets a running task finish.

The signal goes to the cluster's main process only, as systemd sends it with KillMode=mixed
(deploy/systemd/ophai-*worker.service). Sent to the whole process group, django-q2 1.11.1 never
exits: its sentinel dies inside `stop_event.wait()` and the main process blocks for ever in
`stop_event.set()`, waiting for that dead sleeper to wake (see the unit files).
"""

from __future__ import annotations

import signal
import time

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Task

from tests.reliability.processes import (
    group_pids,
    require_postgresql,
    run_python,
    start_cluster,
    stop,
    wait_for,
    worker_env,
)
from tests.reliability.tally import note

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_roles"),
]
TASK_SECONDS = 4
# A cluster that does not exit is SIGKILLed after this; the test then fails on the exit code.
# (No test asserts how long the stop took: that is printed, and measured in bench/.)
GIVE_UP_S = 20


@pytest.fixture
def default_cluster(tmp_path):
    """The default cluster with one worker, and its environment; SIGKILLed if a test left it."""
    require_postgresql()
    env = worker_env(tmp_path / "media", Q_WORKERS="1")
    process = start_cluster(env, name="default", log=tmp_path / "cluster.log")
    yield process, env
    stop(process, signal.SIGKILL)


def _timed_stop(cluster) -> float:
    began = time.monotonic()
    stop(cluster, timeout=GIVE_UP_S)
    return time.monotonic() - began


def test_sigterm_stops_an_idle_cluster(default_cluster, tmp_path):
    cluster, _ = default_cluster
    # main + sentinel + 1 worker + monitor + pusher, then past one guard cycle
    assert wait_for(lambda: len(group_pids(cluster.pid)) == 5, 60, 0.1), (
        f"the cluster did not start; see {tmp_path / 'cluster.log'}"
    )
    time.sleep(1)

    seconds = _timed_stop(cluster)

    assert cluster.returncode == 0, f"killed, not stopped ({seconds:.1f} s)"
    note(f"[stop] idle qcluster (ORM broker): SIGTERM → exit 0 in {seconds:.2f} s")


def test_sigterm_lets_the_running_task_finish_then_stops(default_cluster, tmp_path):
    cluster, env = default_cluster
    run_python(
        env,
        "from django_q.tasks import async_task; "
        f"async_task('time.sleep', {TASK_SECONDS}, task_name='stop-drill')",
    )
    # The pusher locks the row when it hands the task to the (idle) worker.
    assert wait_for(lambda: OrmQ.objects.filter(lock__gt=timezone.now()).exists(), 60), (
        f"the task was not picked up; see {tmp_path / 'cluster.log'}"
    )
    picked_up = time.monotonic()

    seconds = _timed_stop(cluster)

    assert cluster.returncode == 0, f"killed, not stopped ({seconds:.1f} s)"
    task = Task.objects.get(name="stop-drill")
    assert task.success is True
    assert not OrmQ.objects.exists()  # acknowledged: it will not run again
    note(
        f"[stop] qcluster running a {TASK_SECONDS} s task: SIGTERM → task finished and saved, "
        f"exit 0 after {seconds:.2f} s ({time.monotonic() - picked_up:.2f} s after pick-up)"
    )

"""Queueing helpers shared by the apps (the tasks themselves live in each app's tasks.py)."""

from __future__ import annotations

import logging

from django.db import transaction
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def enqueue_on_commit(task_path: str, *args, cluster: str | None = None, **kwargs) -> None:
    """Queue `task_path` (a dotted name) once the current transaction commits.

    A worker must never pick up a task for a row it cannot see yet; outside a transaction
    Django runs the callback at once. If the broker is unreachable the committed work stays
    committed: the error is logged and the owning app's reconciler queues the task again.
    """
    options = {"cluster": cluster} if cluster else {}

    def enqueue() -> None:
        try:
            async_task(task_path, *args, q_options=options, **kwargs)
        except Exception:  # any broker failure (Redis down, database busy): logged, then reconciled
            logger.exception(
                "Could not queue %s%r; the reconciler will queue it again", task_path, args
            )

    transaction.on_commit(enqueue)

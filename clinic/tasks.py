"""Queueing helpers shared by the apps (the tasks themselves live in each app's tasks.py)."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task


def enqueue_on_commit(task_path: str, *args, cluster: str | None = None, **kwargs) -> None:
    """Queue `task_path` (a dotted name) once the current transaction commits.

    A worker must never pick up a task for a row it cannot see yet; outside a transaction
    Django runs the callback at once.
    """
    options = {"cluster": cluster} if cluster else {}

    def enqueue() -> None:
        async_task(task_path, *args, q_options=options, **kwargs)

    transaction.on_commit(enqueue)

"""The shell's scheduled tasks (each app's own tasks live in its tasks.py)."""

from __future__ import annotations


def heartbeat(cluster: str) -> str:
    """Scheduled on each cluster every minute; /healthz reads it."""
    import socket

    from django.utils import timezone

    from clinic.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        cluster=cluster, defaults={"seen_at": timezone.now(), "host": socket.gethostname()}
    )
    return cluster

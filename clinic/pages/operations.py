"""The operations page for administrators: queue depth per cluster, worker heartbeats, the AI
engine's per-stage timings and failures, and the weekly drift watch. /healthz says whether a
host can serve; this page says how the work is flowing."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from ai_engine.drift import drift_weeks
from ai_engine.models import AnalysisStatus
from ai_engine.monitoring import (
    analysis_recent_failures,
    analysis_stage_timings,
    analysis_status_counts,
)
from clinic.health import check_models, check_workers
from core.web import staff_view

logger = logging.getLogger(__name__)
WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class QueueDepth:
    cluster: str
    waiting: int | None
    taken: int | None
    error: str = ""


def queue_depths() -> list[QueueDepth]:
    """Tasks waiting on the broker and taken by a worker, per cluster (ORM or Redis)."""
    from django_q.brokers import get_broker

    depths = []
    for cluster in (settings.Q_CLUSTER["name"], settings.AI_CLUSTER_NAME):
        try:
            broker = get_broker(cluster)
            depths.append(QueueDepth(cluster, broker.queue_size(), broker.lock_size()))
        except Exception as exc:  # noqa: BLE001 — a broker outage is what this page must show
            logger.warning("Queue depth of %s unavailable: %s", cluster, exc)
            depths.append(QueueDepth(cluster, None, None, exc.__class__.__name__))
    return depths


@staff_view("clinic.view_workerheartbeat", "ai_engine.view_analysis")
def operations(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = now - WINDOW
    return render(
        request,
        "clinic/operations.html",
        {
            "nav_section": "operations",
            "broker": "redis" if settings.REDIS_URL else "orm",
            "queues": queue_depths(),
            "workers": check_workers(now)["clusters"],
            "models": check_models(),
            "since": since,
            "status_counts": [
                (AnalysisStatus(status).label, count)
                for status, count in analysis_status_counts(since=since).items()
            ],
            "timings": analysis_stage_timings(since=since),
            "failures": analysis_recent_failures(),
            "drift": drift_weeks(now=now),
        },
    )

"""Read-only figures on the AI engine for administrators: per-stage timings and failures.

Computed from the analyses themselves (each stores its per-stage seconds in `timings`), over a
recent window and at most `TIMING_SAMPLE` rows, so the page costs the same on a busy site.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from django.db.models import Count

from ai_engine.models import Analysis, AnalysisStatus

# The engine's stages in the order they run (ai_engine.inference.predict.STAGES), then the sum.
STAGE_ORDER = ("decode", "crop", "quality", "forward", "cam", "png", "total")
TIMING_SAMPLE = 5_000


@dataclass(frozen=True)
class StageTiming:
    device: str
    stage: str
    count: int
    p50: float
    p95: float
    max: float


def analysis_stage_timings(*, since: dt.datetime) -> list[StageTiming]:
    """p50/p95/max seconds per stage and device of the analyses finished since `since`."""
    rows = (
        Analysis.objects.filter(finished_at__gte=since)
        .exclude(timings={})
        .order_by("-finished_at")
        .values_list("device", "timings")[:TIMING_SAMPLE]
    )
    seconds: dict[tuple[str, str], list[float]] = {}
    for device, timings in rows:
        for stage, value in timings.items():
            if isinstance(value, int | float):
                seconds.setdefault((device or "?", stage), []).append(float(value))
    order = {stage: index for index, stage in enumerate(STAGE_ORDER)}
    return [
        StageTiming(
            device=device,
            stage=stage,
            count=len(values),
            p50=statistics.median(values),
            p95=_percentile(values, 0.95),
            max=max(values),
        )
        for (device, stage), values in sorted(
            seconds.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99), item[0][1])
        )
    ]


def analysis_status_counts(*, since: dt.datetime) -> dict[str, int]:
    """Analyses requested since `since`, by status (every status present, zeros included)."""
    counts = dict.fromkeys(AnalysisStatus.values, 0)
    for row in (
        Analysis.objects.filter(requested_at__gte=since)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        counts[row["status"]] = row["n"]
    return counts


def analysis_recent_failures(*, limit: int = 10) -> list[Analysis]:
    return list(
        Analysis.objects.filter(status=AnalysisStatus.FAILED)
        .select_related("image__record__patient")
        .order_by("-finished_at", "-pk")[:limit]
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

"""Turnaround of a screening: from its first photo upload to its first signed review.

The worklist shows it per row (an unsigned screening is "open", with the time elapsed so
far); the statistics summarise it per period, per doctor.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery
from django.utils.translation import gettext as _

from screening.models import DoctorReview, FundusImage


def with_turnaround(records: QuerySet) -> QuerySet:
    """`records` annotated with `first_upload_at` and `first_signed_at` (one query, no join)."""
    return records.annotate(
        first_upload_at=Subquery(
            FundusImage.objects.filter(record=OuterRef("pk"))
            .order_by("uploaded_at")
            .values("uploaded_at")[:1],
            output_field=DateTimeField(),
        ),
        first_signed_at=Subquery(
            DoctorReview.objects.filter(record=OuterRef("pk"), signed_at__isnull=False)
            .order_by("signed_at")
            .values("signed_at")[:1],
            output_field=DateTimeField(),
        ),
    )


def duration_text(duration: dt.timedelta) -> str:
    """A duration as staff read it, two units at most: "2 d 3 h", "4 h 5 min", "12 min"."""
    minutes = max(0, int(duration.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}


@dataclass(frozen=True)
class Turnaround:
    """Upload → signature; `open` while no review is signed (`duration` is the time so far)."""

    duration: dt.timedelta
    open: bool

    @property
    def text(self) -> str:
        if self.open:
            return _("open, %(elapsed)s so far") % {"elapsed": duration_text(self.duration)}
        return duration_text(self.duration)

    @property
    def hours(self) -> float:
        return round(self.duration.total_seconds() / 3600, 2)


def turnaround_of(
    *, first_upload_at: dt.datetime | None, first_signed_at: dt.datetime | None, now: dt.datetime
) -> Turnaround | None:
    """None before the first photo: nothing has reached the doctors yet."""
    if first_upload_at is None:
        return None
    if first_signed_at is None:
        return Turnaround(now - first_upload_at, open=True)
    return Turnaround(first_signed_at - first_upload_at, open=False)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or
    below it (p90 of 10 values is the 9th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

"""django-q2 tasks of the AI engine. They take IDs, are safe to run twice, and write through services."""

from __future__ import annotations

import logging

from ai_engine.models import Analysis, AnalysisStatus
from ai_engine.services import (
    analyses_claim,
    analyses_ensure,
    analyses_reconcile,
    analysis_mark_failed,
    analysis_save_outcome,
    record_finish_analysis,
    record_start_analysis,
)
from core.audit import audit_source
from screening.models import FundusImage

logger = logging.getLogger(__name__)


def analyse_image(image_id: int) -> str:
    """Analyse a photo with every active package, batching its record's other waiting photos.

    Returns a short summary for django-q2's result log.
    """
    from ai_engine.runner import run_analyses  # torch is imported in the worker only

    with audit_source("task"):
        image = FundusImage.objects.select_related("record").filter(pk=image_id).first()
        if image is None:
            return f"photo {image_id} no longer exists"
        record = image.record
        # Photos of the same visit waiting for their own task are analysed in this batch.
        for photo in record.images.all():
            analyses_ensure(image=photo)
        waiting_image_ids = list(
            Analysis.objects.filter(image__record=record, status=AnalysisStatus.QUEUED)
            .values_list("image_id", flat=True)
            .distinct()
        )
        claimed = analyses_claim(image_ids=sorted(set(waiting_image_ids) | {image_id}))
        if not claimed:
            record_finish_analysis(record=record)
            return f"photo {image_id}: nothing to do"
        # A batch of shadow runs only (say, for a reviewed record) leaves the record as it is.
        visible = any(not analysis.shadow for analysis in claimed)
        if visible:
            record_start_analysis(record=record)
        saved = failed = 0
        for analysis, outcome, error in run_analyses(claimed):
            if error is not None:
                analysis_mark_failed(analysis=analysis, error=error)
                failed += 1
            elif analysis_save_outcome(analysis=analysis, outcome=outcome):
                saved += 1
        if visible:
            record_finish_analysis(record=record)
        return f"photo {image_id}: {saved} analyses saved, {failed} failed"


def reconcile_analyses() -> dict[str, int]:
    with audit_source("task"):
        return analyses_reconcile()

"""django-q2 tasks of the reports app (default cluster). They take IDs and are safe to repeat."""

from __future__ import annotations

import logging

from core.audit import audit_source
from reports.models import Report, ReportLanguage
from reports.services import report_generate
from screening.models import ScreeningRecord
from screening.selectors import record_current_review

logger = logging.getLogger(__name__)


def generate_report_for_record(
    record_id: int, language: str = ReportLanguage.ZH_HANS
) -> int | None:
    """Generate the final report of a signed record (queued by `review_sign` after commit).

    Idempotent: when a report of the current signed review in `language` exists, nothing is
    generated and its ID is returned. Returns None when there is nothing to report on.
    """
    record = ScreeningRecord.objects.filter(pk=record_id).first()
    if record is None:
        logger.warning("Report task: screening record %s does not exist", record_id)
        return None
    if record_current_review(record=record) is None:
        logger.info("Report task: record %s has no signed review; nothing to generate", record_id)
        return None
    with audit_source("task"):
        report: Report = report_generate(record=record, language=language, only_if_missing=True)
    return report.pk


def generate_report_on_demand(
    record_id: int, actor_id: int, language: str = ReportLanguage.ZH_HANS
) -> int:
    """A staff member's "generate" request: always a new version, drafts included."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.get(pk=actor_id)
    record = ScreeningRecord.objects.get(pk=record_id)
    with audit_source("task"):
        return report_generate(record=record, actor=actor, language=language).pk

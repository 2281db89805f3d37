"""The worklist's filters and reads: which screenings, in which order, how many per status.

Without a date the worklist shows today's screenings plus older ones still waiting for review
(the backlog). Rows are ordered by workflow group (waiting for review first), then AI triage
priority (most urgent first), then time, then id, so that pages never overlap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ai_engine.models import AnalysisStatus, Finding, TriageLevel
from clinic.statistics import AGREEMENT_CATEGORIES, Category
from clinic.turnaround import with_turnaround
from core.roles import Role
from reports.models import Report
from screening.models import DoctorReview, RecordStatus, ScreeningRecord
from screening.selectors import staff_with_role

S = RecordStatus
PAGE_SIZE = 25
ME = "me"
UNASSIGNED = "none"
# Workflow groups in the order the worklist shows them (the view splits "review" further
# into gradable and ungradable by the triage reasons).
GROUP_RANK = {
    S.ANALYSED: 0,
    S.IMAGES_UPLOADED: 1,
    S.ANALYSING: 1,
    S.DRAFT: 2,
    S.REVIEWED: 3,
    S.REPORTED: 4,
}


class DateInput(forms.DateInput):
    input_type = "date"


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class WorklistFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=DateInput)
    end = forms.DateField(label=_("To"), required=False, widget=DateInput)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *S.choices]
    )
    triage = forms.ChoiceField(
        label=_("AI triage"),
        required=False,
        choices=[("", _("Any triage level")), *TriageLevel.choices],
    )
    doctor = forms.ChoiceField(label=_("Assigned doctor"), required=False)
    technician = StaffChoiceField(
        label=_("Technician"),
        queryset=staff_with_role(role=Role.TECHNICIAN),
        required=False,
        empty_label=_("Any technician"),
    )
    condition = forms.ChoiceField(
        label=_("Condition found"),
        required=False,
        choices=[("", _("Any condition")), *((c.code, c.label) for c in AGREEMENT_CATEGORIES)],
        help_text=_("A positive AI finding or a doctor's signed conclusion."),
    )

    def __init__(self, *args, doctor_list: list | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["doctor"].choices = [
            ("", _("Any doctor")),
            (ME, _("Me (my worklist)")),
            (UNASSIGNED, _("Not assigned")),
            *(
                (str(user.pk), user.get_full_name() or user.get_username())
                for user in (doctors() if doctor_list is None else doctor_list)
            ),
        ]

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            data["start"], data["end"] = end, start
        return data


def doctors() -> QuerySet:
    return staff_with_role(role=Role.DOCTOR)


@dataclass(frozen=True)
class WorklistFilters:
    start: dt.date | None = None
    end: dt.date | None = None
    status: str = ""
    triage: str = ""
    doctor: str = ""  # "", ME, UNASSIGNED or a user's pk
    technician_id: int | None = None
    condition: str = ""

    @property
    def has_dates(self) -> bool:
        return self.start is not None or self.end is not None

    @classmethod
    def from_form(cls, form: WorklistFilterForm, *, day: dt.date | None = None) -> WorklistFilters:
        """The form's valid values (an invalid field is left out and shown with its error);
        `day` (the older one-day links) stands for start = end = day."""
        data = form.cleaned_data if form.is_bound else {}
        start, end = data.get("start"), data.get("end")
        if day is not None and start is None and end is None:
            start = end = day
        technician = data.get("technician")
        return cls(
            start=start,
            end=end,
            status=data.get("status") or "",
            triage=data.get("triage") or "",
            doctor=data.get("doctor") or "",
            technician_id=technician.pk if technician is not None else None,
            condition=data.get("condition") or "",
        )


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def _condition_found(category: Category) -> Q:
    """A positive finding of the condition on a finished analysis, or a signed review that
    concludes it (visit-level or either eye)."""
    ai = Finding.objects.annotate(code=Lower("label_code")).filter(
        analysis__image__record=OuterRef("pk"),
        analysis__status=AnalysisStatus.DONE,
        positive=True,
        code__in=category.ai_labels,
    )
    # Conclusion codes are whole quoted JSON strings: a text match on '"dr_mild"' is exact and
    # works on SQLite too (which has no JSON containment).
    concluded = Q()
    for code in sorted(category.doctor_codes):
        token = f'"{code}"'
        concluded |= (
            Q(conclusion_codes__icontains=token)
            | Q(conclusion_codes_od__icontains=token)
            | Q(conclusion_codes_os__icontains=token)
        )
    doctor = DoctorReview.objects.filter(concluded, record=OuterRef("pk"), signed_at__isnull=False)
    return Q(Exists(ai)) | Q(Exists(doctor))


def worklist_filtered(
    *, filters: WorklistFilters, user, include_status: bool = True
) -> QuerySet[ScreeningRecord]:
    """The screenings the filters select, unordered and without the row details."""
    records = ScreeningRecord.objects.all()
    if filters.has_dates:
        if filters.start is not None:
            records = records.filter(screened_at__gte=day_start(filters.start))
        if filters.end is not None:
            records = records.filter(screened_at__lt=day_start(filters.end + dt.timedelta(days=1)))
    else:
        today = day_start(timezone.localdate())
        records = records.filter(
            Q(screened_at__gte=today, screened_at__lt=today + dt.timedelta(days=1))
            | Q(status=S.ANALYSED, screened_at__lt=today)
        )
    if include_status and filters.status:
        records = records.filter(status=filters.status)
    if filters.triage:
        records = records.filter(triage__level=filters.triage)
    if filters.doctor == ME:
        records = records.filter(assigned_doctor=user)
    elif filters.doctor == UNASSIGNED:
        records = records.filter(assigned_doctor__isnull=True)
    elif filters.doctor:
        records = records.filter(assigned_doctor_id=int(filters.doctor))
    if filters.technician_id is not None:
        records = records.filter(operator_id=filters.technician_id)
    if filters.condition:
        category = next(c for c in AGREEMENT_CATEGORIES if c.code == filters.condition)
        records = records.filter(_condition_found(category))
    return records


def worklist_records(*, filters: WorklistFilters, user) -> QuerySet[ScreeningRecord]:
    """The worklist's rows in their stable order, with everything a row shows."""
    rank = Case(
        *(When(status=status, then=Value(value)) for status, value in GROUP_RANK.items()),
        default=Value(9),
        output_field=IntegerField(),
    )
    records = (
        worklist_filtered(filters=filters, user=user)
        .select_related("patient", "operator", "triage", "assigned_doctor")
        .annotate(
            group_rank=rank,
            priority=Coalesce("triage__priority", Value(0)),
            image_count=Count("images"),
        )
        .prefetch_related(
            Prefetch(
                "reports", queryset=Report.objects.order_by("-version"), to_attr="report_versions"
            )
        )
        .order_by("group_rank", "-priority", "screened_at", "id")
    )
    return with_turnaround(records)


def worklist_status_counts(*, filters: WorklistFilters, user) -> list[tuple[str, str, int]]:
    """(status, label, screenings) for every status, under every filter but the status one."""
    counts = dict(
        worklist_filtered(filters=filters, user=user, include_status=False)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return [(value, str(label), counts.get(value, 0)) for value, label in S.choices]

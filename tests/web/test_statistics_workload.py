"""Statistics a manager asks for: turnaround, workload, referral rate by condition, exports."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from clinic.turnaround import median, percentile
from clinic.workload import period_label, periods_between, workload_statistics
from core.models import AuditEvent
from screening.models import RecordStatus, ScreeningRecord
from tests.factories import UserFactory
from tests.web.conftest import add_analysis
from tests.web.test_worklist_filters import TZ, _photo, _record, _signed

# A Monday and the Sunday four weeks later: four ISO weeks, 2026 weeks 10-13.
START = dt.date(2026, 3, 2)
END = dt.date(2026, 3, 29)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


@pytest.fixture
def month(db, doctor, technician, package):
    """Week 10: three signed screenings (1 h, 2 h, 6 h) by two doctors and one open one;
    week 12: one signed screening (3 h). Photos by two technicians, one ungradable."""
    doctor2 = UserFactory(username="doctor2", role="doctor", first_name="钱医生")
    tech2 = UserFactory(username="tech2", role="technician", first_name="赵技师")
    monday, week12 = START, START + dt.timedelta(days=14)
    plan = [
        # (day, technician, hours to signature, doctor, conclusion, recommendation)
        (monday, technician, 1, doctor, ["dr_moderate"], "refer"),
        (monday, technician, 2, doctor, ["normal"], "routine"),
        (monday + dt.timedelta(days=2), tech2, 6, doctor2, ["glaucoma_suspect"], "urgent"),
        (monday + dt.timedelta(days=3), tech2, None, None, None, None),
        (week12, technician, 3, doctor2, ["cataract", "dr_mild"], "refer"),
    ]
    records = []
    for day, operator, hours, reader, codes, recommendation in plan:
        status = RecordStatus.REVIEWED if hours else RecordStatus.ANALYSED
        record = _record(operator, status, at=_at(day, 8))
        image = _photo(record, at=_at(day, 9), by=operator)
        add_analysis(image, package, status="ungradable" if hours is None else "done")
        if hours:
            _signed(
                record,
                reader,
                at=_at(day, 9 + hours),
                codes=codes,
                recommendation=recommendation,
            )
        records.append(record)
    # An amendment by the first doctor of a screening the second signed first.
    _signed(
        records[2],
        doctor,
        at=_at(monday + dt.timedelta(days=4), 9),
        version=2,
        codes=["glaucoma_suspect"],
        recommendation="urgent",
    )
    # Outside the range: not counted.
    outside = _record(technician, RecordStatus.REVIEWED, at=_at(END + dt.timedelta(days=1), 8))
    _photo(outside, at=_at(END + dt.timedelta(days=1), 9), by=technician)
    _signed(outside, doctor, at=_at(END + dt.timedelta(days=1), 20), recommendation="refer")
    return records


def _workload(period: str = "week"):
    records = ScreeningRecord.objects.filter(
        screened_at__gte=_at(START, 0), screened_at__lt=_at(END + dt.timedelta(days=1), 0)
    )
    return workload_statistics(records=records, start=START, end=END, period=period)


def test_median_and_nearest_rank_percentile():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 6.0, 3.0]) == 2.5
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([1.0, 2.0, 6.0], 0.9) == 6.0


def test_periods_are_iso_weeks_or_months():
    assert periods_between(START, END, "week") == [
        START + dt.timedelta(days=7 * n) for n in range(4)
    ]
    assert periods_between(dt.date(2026, 1, 31), dt.date(2026, 3, 1), "month") == [
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
        dt.date(2026, 3, 1),
    ]
    assert period_label(START, "week") == "2026 week 10 (from 03-02)"
    assert period_label(START, "month") == "2026-03"


def test_turnaround_per_week(month):
    table = _workload().turnaround
    assert table.columns == [
        "Period",
        "Signed screenings",
        "Median turnaround (hours)",
        "90th percentile (hours)",
    ]
    assert table.rows == [
        ["2026 week 10 (from 03-02)", 3, 2.0, 6.0],
        ["2026 week 11 (from 03-09)", 0, None, None],
        ["2026 week 12 (from 03-16)", 1, 3.0, 3.0],
        ["2026 week 13 (from 03-23)", 0, None, None],
        ["All", 4, 2.5, 6.0],
    ]


def test_turnaround_per_month(month):
    assert _workload("month").turnaround.rows == [["2026-03", 4, 2.5, 6.0], ["All", 4, 2.5, 6.0]]


def test_doctors_workload(month):
    table = _workload().doctors
    assert table.rows == [
        ["doctor1", 3, 2, 1.5],  # two first signatures (1 h, 2 h) and one amendment
        ["钱医生", 2, 2, 4.5],  # 6 h and 3 h
    ]


def test_technicians_workload(month):
    table = _workload().technicians
    assert table.columns[-1] == "Ungradable rate (%)"
    assert table.rows == [
        ["tech1", 3, 3, 0, 0.0],
        ["赵技师", 2, 2, 1, 50.0],
    ]


def test_referral_rate_by_condition(month):
    table = _workload().referrals
    assert table.columns[:6] == [
        "Period",
        "Signed screenings",
        "Referred",
        "Referral rate (%)",
        "Diabetic retinopathy referred (%)",
        "Glaucoma referred (%)",
    ]
    assert table.rows[0][:7] == ["2026 week 10 (from 03-02)", 3, 2, 66.7, 33.3, 33.3, 0.0]
    assert table.rows[1][:4] == ["2026 week 11 (from 03-09)", 0, 0, None]
    assert table.rows[2][:7] == ["2026 week 12 (from 03-16)", 1, 1, 100.0, 100.0, 0.0, 100.0]
    chart = _workload().referral_chart
    assert [series.css_class for series in chart.series] == [
        "condition-dr",
        "condition-glaucoma",
        "condition-cataract",
    ]
    assert [point.value for point in chart.series[0].points] == ["33.3", "100"]


def test_the_statistics_page_shows_the_tables_and_the_chart(client, doctor, month):
    client.force_login(doctor)
    response = client.get(
        reverse("statistics"), {"start": START.isoformat(), "end": END.isoformat()}
    )
    html = response.content.decode()
    assert '<polyline class="line condition-dr"' in html
    for name in ("turnaround", "doctors", "technicians", "referrals"):
        assert html.count(f'id="table-{name}"') == 1
    assert (
        'href="/statistics/export/doctors/?start=2026-03-02&amp;end=2026-03-29&amp;period=week'
        '&amp;format=xlsx"' in html
    )
    assert '<th scope="row">钱医生</th><td class="num">2</td>' in html


def test_the_statistics_queries_do_not_grow_with_rows(client, doctor, technician, month):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            client.get(reverse("statistics"), {"start": START.isoformat(), "end": END.isoformat()})
        return len(context)

    client.force_login(doctor)
    few = queries()
    for hour in range(10, 16):
        record = _record(technician, RecordStatus.REVIEWED, at=_at(START, hour))
        _photo(record, at=_at(START, hour, 5), by=technician)
        _signed(record, doctor, at=_at(START, hour, 30), recommendation="refer", codes=["amd"])
    assert queries() == few


# --- exports --------------------------------------------------------------------------------
def _export(client, table: str, fmt: str | None, **params):
    query = {"start": START.isoformat(), "end": END.isoformat(), **params}
    if fmt is not None:
        query["format"] = fmt
    return client.get(reverse("statistics-export", args=[table]), query)


def test_csv_export_with_a_byte_order_mark(client, doctor, month):
    client.force_login(doctor)
    response = _export(client, "doctors", "csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="statistics-doctors-20260302-20260329.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [
        ["Doctor", "Reviews signed", "Screenings signed first", "Median turnaround (hours)"],
        ["doctor1", "3", "2", "1.5"],
        ["钱医生", "2", "2", "4.5"],
    ]


def test_csv_is_the_default_format(client, doctor, month):
    client.force_login(doctor)
    response = _export(client, "turnaround", None, period="month")
    assert response.content.decode("utf-8-sig").splitlines()[1:] == [
        "2026-03,4,2.5,6.0",
        "All,4,2.5,6.0",
    ]


def test_xlsx_export_opens_in_openpyxl(client, admin_user, month):
    client.force_login(admin_user)
    response = _export(client, "technicians", "xlsx")
    assert response["Content-Disposition"] == (
        'attachment; filename="statistics-technicians-20260302-20260329.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "Technicians' workload"
    assert list(sheet.iter_rows(values_only=True)) == [
        ("Technician", "Screenings", "Photos", "Ungradable analyses", "Ungradable rate (%)"),
        ("tech1", 3, 3, 0, 0),
        ("赵技师", 2, 2, 1, 50),
    ]


def test_an_export_is_audited(client, doctor, month):
    client.force_login(doctor)
    _export(client, "referrals", "xlsx", period="month")
    event = AuditEvent.objects.get(action="download")
    assert (event.actor, event.object_type, event.object_id, event.changes) == (
        doctor,
        "clinic.statistics",
        "referrals",
        {"start": "2026-03-02", "end": "2026-03-29", "period": "month", "format": "xlsx"},
    )


def test_an_unknown_format_is_a_400_with_a_clear_message(client, doctor, month):
    client.force_login(doctor)
    response = _export(client, "doctors", "pdf")
    assert response.status_code == 400
    assert response.content.decode() == "Unknown export format “pdf”: use csv or xlsx."
    assert not AuditEvent.objects.filter(action="download").exists()


def test_an_unknown_table_is_a_404(client, doctor):
    client.force_login(doctor)
    assert _export(client, "patients", "csv").status_code == 404


def test_technicians_may_not_export_statistics(client, technician, month):
    client.force_login(technician)
    assert _export(client, "doctors", "csv").status_code == 403
    assert not AuditEvent.objects.filter(action="download").exists()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = _export(client, "doctors", "csv")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_pages_other_tables_export_too(client, doctor, month):
    client.force_login(doctor)
    per_day = _export(client, "per_day", "csv").content.decode("utf-8-sig").splitlines()
    assert per_day[0] == "Day,Screenings"
    assert per_day[1:4] == ["2026-03-02,2", "2026-03-03,0", "2026-03-04,1"]
    assert len(per_day) == 1 + 28
    client.cookies["django_language"] = "zh-hans"
    sheet = load_workbook(io.BytesIO(_export(client, "agreement", "xlsx").content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("病种", "例数", "均为阳性")
    assert rows[0][-3:] == ("一致率（%）", "敏感度（%）", "特异度（%）")
    assert len(rows) == 1 + 6 + 2  # six conditions, referable DR and macular oedema per eye
    page = client.get(reverse("statistics"), {"start": START.isoformat(), "end": END.isoformat()})
    assert 'href="/statistics/export/findings/?start=2026-03-02' in page.content.decode()

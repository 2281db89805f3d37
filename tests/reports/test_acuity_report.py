"""The report shows acuity in the clinic's notation, corrected and pinhole acuity when measured."""

from decimal import Decimal

from reports.services import report_generate
from screening.models import ScreeningRecord
from tests.reports.test_pdf import read_pdf, squash


def test_the_report_writes_acuity_in_the_clinics_notation(signed_record, doctor, tmp_path):
    # Measured before signing; set directly as a signed visit refuses corrections.
    ScreeningRecord.objects.filter(pk=signed_record.pk).update(
        cva_logmar_od=Decimal("1.9"),
        cva_category_od="CF",
        cva_cf_cm_od=30,
        cva_correction_od="glasses",
    )

    flat = squash(read_pdf(report_generate(record=signed_record, actor=doctor), tmp_path))

    assert "裸眼视力（五分记录）4.95.0" in flat  # OD 0.8, OS 1.0 in 5-point
    assert "矫正视力指数/30cm(框架眼镜)—" in flat
    assert "小孔视力" not in flat  # not measured in either eye
    assert "logMAR（裸眼）0.100.00" in flat

"""Acuity entered in one notation on the staff pages and shown in each viewer's own."""

import re
from decimal import Decimal

from django.urls import reverse

from core.models import AuditEvent, StaffProfile
from screening.models import ScreeningRecord


def cells(html: str) -> dict[str, str]:
    """The acuity cells of the screening page: {"va_od": "0.8", ...} (tags stripped)."""
    found = re.findall(r'data-acuity="(\w+)">(.*?)</td>', html)
    return {name: re.sub(r"<[^>]+>", "", text).strip() for name, text in found}


def test_acuity_entered_in_5_point_is_shown_in_decimal_to_a_decimal_user(
    client, technician, doctor, patient
):
    StaffProfile.objects.create(user=doctor, va_notation="decimal")
    client.force_login(technician)
    response = client.post(
        reverse("screening:create", args=[patient.patient_id]),
        {
            "va_od": "4.9",
            "va_os": "指数/30cm",
            "cva_od": "5.0",
            "cva_correction_od": "glasses",
            "cva_os": "",
            "cva_correction_os": "",
            "phva_od": "",
            "phva_os": "4.6",
            "iop_od": "",
            "iop_os": "",
            "notes": "",
        },
    )
    assert response.status_code == 302
    record = ScreeningRecord.objects.get()
    assert (record.logmar_od, record.va_od, record.va_category_os) == (
        Decimal("0.100"),
        Decimal("0.80"),
        "CF",
    )
    url = reverse("pages:screening-detail", args=[record.pk])

    # The technician has no preference: the clinic's VA_NOTATION, five_point.
    assert cells(client.get(url).content.decode()) == {
        "va_od": "4.9",
        "va_os": "CF/30cm",
        "cva_od": "5.0 Glasses",
        "cva_os": "–",
        "phva_od": "–",
        "phva_os": "4.6",
    }
    client.force_login(doctor)
    html = client.get(url).content.decode()
    assert cells(html) == {
        "va_od": "0.8",
        "va_os": "CF/30cm",
        "cva_od": "1.0 Glasses",
        "cva_os": "–",
        "phva_od": "–",
        "phva_os": "0.4",
    }
    assert "Uncorrected visual acuity" in html and "Visual acuity (decimal)</a>" in html
    patient_page = client.get(reverse("pages:patient-detail", args=[patient.patient_id]))
    assert '<td class="num">0.8</td>' in patient_page.content.decode()


def test_the_edit_form_shows_acuity_in_the_users_notation(client, technician, record, settings):
    settings.VA_NOTATION = "decimal"
    client.force_login(technician)
    form = client.get(reverse("screening:edit", args=[record.pk])).context["form"]
    assert (form.initial["va_od"], form.initial["va_os"], form.initial["cva_od"]) == (
        "0.8",
        "1.0",
        "",
    )
    StaffProfile.objects.create(user=technician, va_notation="five_point")
    technician.refresh_from_db()
    client.force_login(technician)
    form = client.get(reverse("screening:edit", args=[record.pk])).context["form"]
    assert (form.initial["va_od"], form.initial["va_os"]) == ("4.9", "5.0")


def test_a_doctor_chooses_decimal_in_my_settings(client, doctor):
    client.force_login(doctor)
    url = reverse("pages:my-settings")
    page = client.get(url).content.decode()
    assert "The clinic&#x27;s default: 5-point (4.0–5.3)" in page
    assert f'href="{url}"' in page  # reachable from the user menu

    response = client.post(url, {"va_notation": "decimal"})

    assert response.status_code == 302
    assert StaffProfile.objects.get(user=doctor).va_notation == "decimal"
    event = AuditEvent.objects.get(object_type="core.staffprofile")
    assert (event.actor, event.action, event.changes) == (
        doctor,
        "update",
        {"va_notation": ["", "decimal"]},
    )


def test_my_settings_refuse_a_bad_choice_and_patients(client, doctor, patient_user):
    client.force_login(doctor)
    response = client.post(reverse("pages:my-settings"), {"va_notation": "snellen"})
    assert response.status_code == 200
    assert "va_notation" in response.context["form"].errors
    client.force_login(patient_user)
    assert client.post(reverse("pages:my-settings"), {"va_notation": "decimal"}).status_code == 403
    assert not StaffProfile.objects.exists()
    assert not AuditEvent.objects.filter(object_type="core.staffprofile").exists()

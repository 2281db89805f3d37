"""Patient pages: search with masked identifiers, registration and editing through the services,
the audited patient page with its history and trend charts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from patients.models import Patient
from tests.factories import PatientFactory, ScreeningRecordFactory

VALID = {
    "name": "王小明",
    "sex": "male",
    "date_of_birth": "1990-03-07",
    "phone": "138 1234 8000",
    "national_id": "",
    "notes": "",
}


def test_the_list_masks_phone_and_id_numbers(client, technician):
    PatientFactory(name="李四", phone="13812348000", national_id="11010119900307451X")
    client.force_login(technician)
    html = client.get(reverse("patients:list")).content.decode()
    assert "138****8000" in html
    assert "110***********451X" in html
    assert "13812348000" not in html
    assert "11010119900307451X" not in html


@pytest.mark.parametrize("query", ["李四", "T20269999", "8000"])
def test_search_finds_by_name_id_or_phone_digits(client, technician, query):
    PatientFactory(patient_id="T20269999", name="李四", phone="13812348000")
    PatientFactory(name="张三", phone="13900001111")
    client.force_login(technician)
    response = client.get(reverse("patients:list"), {"q": query})
    assert [p.name for p in response.context["patients"]] == ["李四"]


def test_the_list_needs_a_constant_number_of_queries(
    client, technician, django_assert_max_num_queries
):
    for _ in range(15):
        ScreeningRecordFactory(operator=technician)
    client.force_login(technician)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("patients:list"))
    assert len(response.context["patients"]) == 15


def test_a_technician_registers_a_patient(client, technician):
    client.force_login(technician)
    response = client.post(reverse("patients:create"), VALID)
    patient = Patient.objects.get(name="王小明")
    assert response.status_code == 302
    assert response["Location"] == reverse("pages:patient-detail", args=[patient.patient_id])
    assert (patient.phone, patient.date_of_birth) == ("13812348000", dt.date(1990, 3, 7))
    assert AuditEvent.objects.filter(action="create", object_type="patients.patient").count() == 1


def test_service_errors_appear_on_their_fields_and_nothing_is_saved(client, technician):
    client.force_login(technician)
    response = client.post(
        reverse("patients:create"),
        {**VALID, "phone": "12345", "national_id": "110101199003074510"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["phone"][0].startswith("Enter a mainland mobile number")
    assert "check character is wrong" in form.errors["national_id"][0]
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert 'id="id_phone_error"' in html
    assert not Patient.objects.exists()


def test_form_errors_of_missing_fields(client, technician):
    client.force_login(technician)
    response = client.post(reverse("patients:create"), {**VALID, "name": "", "date_of_birth": ""})
    assert set(response.context["form"].errors) == {"name", "date_of_birth"}
    assert not Patient.objects.exists()


def test_doctors_may_not_register_or_edit_patients(client, doctor, patient):
    client.force_login(doctor)
    assert client.get(reverse("patients:create")).status_code == 403
    assert client.post(reverse("patients:create"), VALID).status_code == 403
    edit = reverse("patients:edit", args=[patient.patient_id])
    assert client.post(edit, {**VALID, "name": "改名"}).status_code == 403
    patient.refresh_from_db()
    assert patient.name != "改名"
    assert Patient.objects.count() == 1
    assert not AuditEvent.objects.filter(action__in=["create", "update"], actor=doctor).exists()


def test_a_technician_edits_a_patient(client, technician, patient):
    client.force_login(technician)
    url = reverse("patients:edit", args=[patient.patient_id])
    form = client.get(url).context["form"]
    assert form.initial["name"] == patient.name
    response = client.post(url, {**VALID, "name": patient.name, "phone": "010-12345678"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.phone == "01012345678"
    assert patient.sex == "male"


def test_the_patient_page_is_audited_and_shows_history_and_trends(
    client, doctor, patient, technician
):
    now = timezone.now()
    for days, va, iop in ((60, "0.60", "24.0"), (30, "0.70", "19.0"), (1, "0.80", "16.0")):
        ScreeningRecordFactory(
            patient=patient,
            operator=technician,
            screened_at=now - dt.timedelta(days=days),
            va_od=Decimal(va),
            iop_od=Decimal(iop),
        )
    client.force_login(doctor)
    response = client.get(reverse("pages:patient-detail", args=[patient.patient_id]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<polyline class="line od"') == 2  # VA and IOP, right eye
    assert html.count('<circle class="dot od"') == 6
    assert 'class="num flag-high">24.0' in html
    assert len(response.context["records"]) == 3
    event = AuditEvent.objects.get(action="view", object_type="patients.patient")
    assert (event.actor, event.patient_ref) == (doctor, patient.patient_id)


def test_the_patient_page_links_each_screenings_latest_report(client, doctor, record):
    from reports.models import Report

    Report.objects.create(
        record=record,
        version=1,
        status="final",
        summary_final="ok",
        summary_source="template",
        pdf="reports/x.pdf",
        pdf_sha256="0" * 64,
    )
    latest = Report.objects.create(
        record=record,
        version=2,
        status="final",
        summary_final="ok",
        summary_source="template",
        pdf="reports/y.pdf",
        pdf_sha256="1" * 64,
    )
    client.force_login(doctor)
    html = client.get(
        reverse("pages:patient-detail", args=[record.patient.patient_id])
    ).content.decode()
    assert reverse("reports:report-pdf", args=[latest.pk]) in html
    assert "PDF v2" in html


MALE_ID = "110101199003074514"  # born 1990-03-07, 17th digit 1: a man's ID


def test_registration_fills_birth_date_and_sex_from_the_id_number(client, technician):
    client.force_login(technician)
    response = client.post(
        reverse("patients:create"),
        {**VALID, "sex": "", "date_of_birth": "", "national_id": MALE_ID},
    )
    assert response.status_code == 302
    patient = Patient.objects.get(name="王小明")
    assert (patient.sex, patient.date_of_birth) == ("male", dt.date(1990, 3, 7))


def test_an_id_number_of_the_other_sex_is_a_form_error(client, technician):
    client.force_login(technician)
    response = client.post(
        reverse("patients:create"), {**VALID, "sex": "female", "national_id": MALE_ID}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["national_id"] == [
        "The ID number records the sex as Male (its 17th digit), but Female was chosen."
    ]
    assert not Patient.objects.exists()


def test_the_form_loads_the_id_script_from_a_file_with_no_inline_script(client, technician):
    client.force_login(technician)
    html = client.get(reverse("patients:create")).content.decode()
    assert '<script src="/static/clinic/patient_form.js" defer></script>' in html
    assert "<script>" not in html


@pytest.mark.parametrize("name", ["王\u202e小明", "王\u200d小明", "王" + "\u0336" * 8])
def test_a_spoofing_name_is_a_form_error(client, technician, name):
    client.force_login(technician)
    response = client.post(reverse("patients:create"), {**VALID, "name": name})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["name"]
    assert not Patient.objects.exists()

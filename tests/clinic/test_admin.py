"""The day-one workflow in the Django admin, as each role experiences it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.models import AuditEvent
from patients.models import Patient
from screening.models import DoctorReview, FundusImage, RecordStatus, ScreeningRecord
from tests.conftest import fundus_like_jpeg
from tests.screening import hostile_files

VALID_ID = "110105194912310011"  # a man's ID (17th digit odd)


def record_form(patient, **extra):
    now = timezone.localtime()
    data = {
        "patient": patient.pk,
        "screened_at_0": now.strftime("%Y-%m-%d"),
        "screened_at_1": now.strftime("%H:%M:%S"),
        "va_od": "0.8",
        "va_os": "0.6",
        "iop_od": "18",
        "iop_os": "24",
        "notes": "",
        "images-TOTAL_FORMS": "2",
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "12",
        "images-0-eye": "OD",
        "images-1-eye": "OS",
        "reviews-TOTAL_FORMS": "0",
        "reviews-INITIAL_FORMS": "0",
        "reviews-MIN_NUM_FORMS": "0",
        "reviews-MAX_NUM_FORMS": "1000",
    }
    data.update(extra)
    return data


def test_technician_registers_patient_and_screening_with_two_photos_then_doctor_signs(
    client, technician, doctor
):
    client.force_login(technician)
    response = client.post(
        "/admin/patients/patient/add/",
        {
            "name": "张伟",
            "sex": "male",
            "date_of_birth": "1949-12-31",
            "phone": "13812348000",
            "national_id": VALID_ID,
            "notes": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    patient = Patient.objects.get()
    assert patient.patient_id.startswith(f"P{timezone.localdate().year}")
    assert patient.created_by == technician

    od = SimpleUploadedFile("right.jpg", fundus_like_jpeg(seed=1), content_type="image/jpeg")
    os_ = SimpleUploadedFile("left.jpg", fundus_like_jpeg(seed=2), content_type="image/jpeg")
    response = client.post(
        "/admin/screening/screeningrecord/add/",
        record_form(patient, **{"images-0-upload": od, "images-1-upload": os_}),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    record = ScreeningRecord.objects.get()
    assert (record.operator, record.status, record.iop_os_flag) == (
        technician,
        RecordStatus.IMAGES_UPLOADED,
        "high",
    )
    assert sorted(FundusImage.objects.values_list("eye", "original_name")) == [
        ("OD", "right.jpg"),
        ("OS", "left.jpg"),
    ]

    client.force_login(doctor)
    response = client.post(
        "/admin/screening/doctorreview/add/",
        {
            "record": record.pk,
            "conclusion_codes": ["glaucoma_suspect"],
            "conclusion_text": "杯盘比增大",
            "recommendation": "refer",
            "recommendation_text": "",
            "follow_up_months": "3",
            "follow_up_date": "",
            "amendment_reason": "",
            "sign_now": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    review = DoctorReview.objects.get()
    assert (review.doctor, review.conclusion_codes, review.is_signed) == (
        doctor,
        ["glaucoma_suspect"],
        True,
    )
    assert ScreeningRecord.objects.get().status == RecordStatus.REVIEWED
    assert AuditEvent.objects.filter(action="sign", actor=doctor).count() == 1


def test_a_bad_photo_gets_a_form_error_and_nothing_is_stored(client, technician, patient, settings):
    client.force_login(technician)
    name, data = hostile_files.truncated_jpeg()
    response = client.post(
        "/admin/screening/screeningrecord/add/",
        record_form(
            patient,
            **{"images-0-upload": SimpleUploadedFile(name, data), "images-TOTAL_FORMS": "1"},
        ),
    )
    assert response.status_code == 200
    assert "damaged or incomplete" in response.content.decode()
    assert ScreeningRecord.objects.count() == 0
    assert (
        not any(p.is_file() for p in settings.MEDIA_ROOT.rglob("*"))
        if settings.MEDIA_ROOT.exists()
        else True
    )


def test_invalid_patient_data_shows_field_errors(client, technician):
    client.force_login(technician)
    response = client.post(
        "/admin/patients/patient/add/",
        {
            "name": "张伟",
            "sex": "male",
            "date_of_birth": "1950-01-01",
            "phone": "123",
            "national_id": VALID_ID,
            "notes": "",
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Enter a mainland mobile number" in content
    assert "differs from the date of birth entered" in content
    assert Patient.objects.count() == 0


def test_lists_show_masked_phone_and_id_numbers(client, technician, patient):
    Patient.objects.filter(pk=patient.pk).update(phone="13812348000", national_id=VALID_ID)
    client.force_login(technician)
    content = client.get("/admin/patients/patient/").content.decode()
    assert "138****8000" in content and "110***********0011" in content
    assert "13812348000" not in content and VALID_ID not in content


def test_search_by_phone_works_on_the_masked_list(client, technician, patient):
    Patient.objects.filter(pk=patient.pk).update(phone="13812348000")
    client.force_login(technician)
    content = client.get("/admin/patients/patient/", {"q": "13812348000"}).content.decode()
    assert patient.patient_id in content


@pytest.mark.parametrize(
    ("role", "url", "status"),
    [
        ("technician", "/admin/screening/doctorreview/add/", 403),
        ("doctor", "/admin/patients/patient/add/", 403),
        ("doctor", "/admin/screening/screeningrecord/add/", 403),
        ("technician", "/admin/core/auditevent/", 403),
        ("administrator", "/admin/core/auditevent/", 200),
        ("doctor", "/admin/patients/patient/", 200),
    ],
)
def test_admin_pages_follow_the_roles(client, db, role, url, status):
    from tests.factories import UserFactory

    client.force_login(UserFactory(role=role))
    assert client.get(url).status_code == status


def test_patients_cannot_enter_the_admin(client, patient_user):
    client.force_login(patient_user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_audit_log_is_read_only_even_for_administrators(client, admin_user, patient, doctor):
    from core.audit import audit_log

    event = audit_log(actor=doctor, action="view", obj=patient)
    client.force_login(admin_user)
    assert (
        client.post(f"/admin/core/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    page = client.get(f"/admin/core/auditevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_a_signed_review_is_read_only_in_the_admin(client, doctor, record):
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    from screening.services import review_save_draft, review_sign

    review = review_sign(
        doctor=doctor,
        review=review_save_draft(
            doctor=doctor, record=record, conclusion_codes=["normal"], recommendation="routine"
        ),
    )
    client.force_login(doctor)
    response = client.post(
        f"/admin/screening/doctorreview/{review.pk}/change/",
        {"conclusion_codes": ["cataract"], "recommendation": "refer"},
    )
    assert response.status_code == 403
    review.refresh_from_db()
    assert review.conclusion_codes == ["normal"]


ADMIN_REVIEW = {
    "conclusion_codes": ["normal"],
    "conclusion_text": "",
    "recommendation": "routine",
    "recommendation_text": "",
    "follow_up_months": "12",
    "follow_up_date": "",
    "amendment_reason": "",
    "sign_now": "on",
}


@pytest.mark.parametrize("persona", ["superuser", "administrator"])
def test_only_doctors_write_or_sign_reviews_in_the_admin(client, record, persona):
    """The reported case: the superuser `admin` signed "no abnormality / routine" in the admin."""
    from tests.factories import UserFactory

    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    user = (
        UserFactory(username="root", is_superuser=True, is_staff=True, role="administrator")
        if persona == "superuser"
        else UserFactory(role="administrator")
    )
    client.force_login(user)
    assert client.get("/admin/screening/doctorreview/add/").status_code == 403
    response = client.post(
        "/admin/screening/doctorreview/add/", {"record": record.pk, **ADMIN_REVIEW}
    )
    assert response.status_code == 403
    assert not DoctorReview.objects.exists()
    assert ScreeningRecord.objects.get(pk=record.pk).status == RecordStatus.ANALYSED
    assert client.get("/admin/screening/doctorreview/").status_code == 200  # reading is fine


def test_an_admin_review_form_signs_only_what_it_showed(client, doctor, record):
    from screening.services import review_save_draft
    from tests.factories import UserFactory

    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    seen = review_save_draft(
        doctor=doctor, record=record, conclusion_codes=["cataract"], recommendation="refer"
    )
    client.force_login(doctor)
    url = f"/admin/screening/doctorreview/{seen.pk}/change/"
    assert 'name="seen_revision" value="1"' in client.get(url).content.decode()
    colleague = UserFactory(username="doctor-b", role="doctor")
    review_save_draft(
        doctor=colleague,
        record=record,
        revision=1,
        conclusion_codes=["normal"],
        recommendation="routine",
    )

    stale = client.post(
        url, {**ADMIN_REVIEW, "conclusion_codes": ["cataract"], "seen_revision": "1"}
    )
    added = client.post("/admin/screening/doctorreview/add/", {"record": record.pk, **ADMIN_REVIEW})

    for response in (stale, added):
        assert response.status_code == 200
        assert "changed after you last saw it (now version 1, revision 2, draft by doctor-b)" in (
            response.content.decode()
        )
    review = DoctorReview.objects.get()
    assert (review.is_signed, review.conclusion_codes, review.revision) == (False, ["normal"], 2)


def test_an_admin_save_keeps_the_per_eye_conclusions_and_shows_them(client, doctor, record):
    from screening.services import review_save_draft

    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    draft = review_save_draft(
        doctor=doctor,
        record=record,
        recommendation="follow_up",
        conclusion_codes_od=["cataract"],
        recommendation_od="follow_up",
    )
    client.force_login(doctor)
    url = f"/admin/screening/doctorreview/{draft.pk}/change/"
    assert "Right eye (OD): Cataract [H26.9] · Follow-up examination" in (
        client.get(url).content.decode()
    )

    response = client.post(
        url,
        {
            **ADMIN_REVIEW,
            "conclusion_codes": ["cataract"],
            "recommendation": "refer",
            "sign_now": "",
            "seen_revision": str(draft.revision),
        },
    )
    assert response.status_code == 302
    review = DoctorReview.objects.get()
    assert (review.recommendation, review.revision) == ("refer", 2)
    assert (review.conclusion_codes_od, review.diagnosis_codes_od) == (["cataract"], ["H26.9"])
    assert review.recommendation_od == "follow_up"

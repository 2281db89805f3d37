"""Search as staff type: pinyin, initials, phone tail, resident ID (issue #15)."""

import datetime as dt
import importlib

import pytest
from django.apps import apps as django_apps

from patients.models import Patient
from patients.pinyin import name_pinyin_keys, pinyin_query
from patients.selectors import patient_search
from patients.services import patient_create, patient_update
from tests.factories import PatientFactory

VALID_ID = "11010519491231002X"


def test_a_name_is_keyed_by_its_pinyin_and_initials():
    assert name_pinyin_keys("张晓宇") == ("zhangxiaoyu", "zxy")
    assert name_pinyin_keys("欧阳娜娜") == ("ouyangnana", "oynn")
    assert name_pinyin_keys("吕布") == ("lvbu", "lb")
    assert name_pinyin_keys("John Smith") == ("johnsmith", "js")
    assert name_pinyin_keys("") == ("", "")


def test_a_polyphonic_surname_is_keyed_by_its_common_readings():
    assert name_pinyin_keys("单田芳") == (
        "dantianfang chantianfang shantianfang",
        "dtf ctf stf",
    )
    assert name_pinyin_keys("曾小贤") == ("cengxiaoxian zengxiaoxian", "cxx zxx")


@pytest.mark.parametrize(
    ("typed", "spelled"),
    [
        ("Zhang Xiaoyu", "zhangxiaoyu"),
        ("zhāng xiǎo yǔ", "zhangxiaoyu"),
        ("ZXY", "zxy"),
        ("lǚ bu", "lvbu"),
        ("138", ""),
        ("张", ""),
    ],
)
def test_a_typed_query_is_spelled_as_the_keys_are(typed, spelled):
    assert pinyin_query(typed) == spelled


@pytest.fixture
def people(db):
    return {
        "zhang": PatientFactory(
            name="张晓宇", phone="13812348000", national_id=VALID_ID, patient_id="P20260001"
        ),
        "zhao": PatientFactory(name="赵敏", phone="13987654321", patient_id="P20260002"),
        "shan": PatientFactory(name="单田芳", phone="13700001111", patient_id="P20260003"),
        "wang": PatientFactory(name="王芳", phone="13600002222", patient_id="P20260004"),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zxy", ["zhang"]),
        ("ZXY", ["zhang"]),
        ("zhangxiaoyu", ["zhang"]),
        ("Zhang Xiaoyu", ["zhang"]),
        ("zhāng xiǎoyǔ", ["zhang"]),
        ("xiaoyu", ["zhang"]),
        ("zx", ["zhang"]),
        ("zm", ["zhao"]),
        ("stf", ["shan"]),
        ("dtf", ["shan"]),
        ("shantianfang", ["shan"]),
        ("晓宇", ["zhang"]),
        ("8000", ["zhang"]),
        ("1234 8000", ["zhang"]),
        ("13812348000", ["zhang"]),
        ("1234", []),  # the middle of a phone number is not its tail
        ("002X", ["zhang"]),
        ("002x", ["zhang"]),
        ("11010519491231002x", ["zhang"]),
        ("P20260002", ["zhao"]),
        ("fang", ["shan", "wang"]),
        ("nobody", []),
    ],
)
def test_staff_find_patients_as_they_type(people, query, expected):
    found = patient_search(query=query)
    assert sorted(patient.patient_id for patient in found) == sorted(
        people[key].patient_id for key in expected
    )


def test_short_pinyin_matches_from_the_start_of_a_name(db):
    an = PatientFactory(name="安然")
    PatientFactory(name="张晓宇")
    assert list(patient_search(query="an")) == [an]
    assert list(patient_search(query="ar")) == [an]


def test_registration_and_a_name_change_keep_the_pinyin_keys(technician):
    patient = patient_create(
        actor=technician, name="张晓宇", sex="male", date_of_birth=dt.date(1980, 1, 2)
    )
    assert (patient.name_pinyin, patient.name_initials) == ("zhangxiaoyu", "zxy")
    patient_update(actor=technician, patient=patient, name="李晓宇")
    patient.refresh_from_db()
    assert (patient.name_pinyin, patient.name_initials) == ("lixiaoyu", "lxy")
    assert list(patient_search(query="lxy")) == [patient]
    assert list(patient_search(query="zxy")) == []


def test_the_migration_fills_the_keys_of_existing_patients(db):
    patient = PatientFactory(name="张晓宇")
    Patient.objects.filter(pk=patient.pk).update(name_pinyin="", name_initials="")
    migration = importlib.import_module("patients.migrations.0003_name_pinyin")
    migration.fill_name_pinyin(django_apps, None)
    patient.refresh_from_db()
    assert (patient.name_pinyin, patient.name_initials) == ("zhangxiaoyu", "zxy")

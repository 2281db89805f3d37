from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from patients.models import Patient
from patients.pinyin import name_pinyin_keys
from screening.acuity import logmar_from_decimal
from screening.models import ScreeningRecord


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs) -> None:
        if not create or not extracted:
            return
        self.groups.add(Group.objects.get(name=extracted))
        if extracted != "patient":
            self.is_staff = True
            self.save(update_fields=["is_staff"])


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    patient_id = factory.Sequence(lambda n: f"T2026{n:04d}")
    name = factory.Sequence(lambda n: f"测试患者{n}")
    sex = "female"
    date_of_birth = dt.date(1970, 5, 17)
    phone = factory.Sequence(lambda n: f"1380000{n:04d}")
    name_pinyin = factory.LazyAttribute(lambda patient: name_pinyin_keys(patient.name)[0])
    name_initials = factory.LazyAttribute(lambda patient: name_pinyin_keys(patient.name)[1])


def acuity_logmar(va: Decimal | None) -> Decimal | None:
    return None if va is None else logmar_from_decimal(va)


class ScreeningRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScreeningRecord

    patient = factory.SubFactory(PatientFactory)
    operator = factory.SubFactory(UserFactory, role="technician")
    va_od = Decimal("0.80")
    va_os = Decimal("1.00")
    # The stored logMAR follows the decimal acuity a test gives, as the services store it.
    logmar_od = factory.LazyAttribute(lambda record: acuity_logmar(record.va_od))
    logmar_os = factory.LazyAttribute(lambda record: acuity_logmar(record.va_os))
    iop_od = Decimal("15.0")
    iop_os = Decimal("16.0")


class ModelPackageFactory(factory.django.DjangoModelFactory):
    """A registered package row for tests that need AI results but no real weights."""

    class Meta:
        model = "ai_engine.ModelPackage"
        django_get_or_create = ("name", "version")

    name = "odir-demo"
    version = "1.2.0"
    task = "multilabel"
    architecture = "mobilenetv3_small_100"
    path = "/nonexistent"
    weights_sha256 = "ab" * 32
    card = factory.LazyFunction(dict)
    demonstration = True
    state = "active"

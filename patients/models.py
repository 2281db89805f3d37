from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.identifiers import mask_national_id, mask_phone


class Sex(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")
    UNKNOWN = "unknown", _("Unknown")


class Patient(models.Model):
    """A person screened at the clinic: identity, demographics and contact."""

    patient_id = models.CharField(_("patient ID"), max_length=32, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100)
    # Derived from the name by the services (patients.pinyin), for search as staff type.
    name_pinyin = models.TextField(_("name in pinyin"), blank=True, editable=False)
    name_initials = models.TextField(_("initials of the name"), blank=True, editable=False)
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices)
    date_of_birth = models.DateField(_("date of birth"))
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    national_id = models.CharField(_("resident ID number"), max_length=18, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["national_id"],
                condition=~models.Q(national_id=""),
                name="unique_patient_national_id",
                violation_error_message=_("A patient with this ID number already exists."),
            ),
        ]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.name}"

    def age_on(self, day: dt.date) -> int:
        before_birthday = (day.month, day.day) < (self.date_of_birth.month, self.date_of_birth.day)
        return day.year - self.date_of_birth.year - int(before_birthday)

    @property
    def age(self) -> int:
        return self.age_on(timezone.localdate())

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def masked_national_id(self) -> str:
        return mask_national_id(self.national_id)


class PatientIdCounter(models.Model):
    """The last patient number issued in a year; rows are locked while a number is taken."""

    year = models.PositiveIntegerField(primary_key=True)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("patient ID counter")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_value}"


class PatientAccount(models.Model):
    """A mini-program login: a user with the patient role, bound to one patient by WeChat openid."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="patient_account",
    )
    patient = models.ForeignKey(
        Patient, verbose_name=_("patient"), on_delete=models.CASCADE, related_name="accounts"
    )
    wechat_openid = models.CharField(_("WeChat openid"), max_length=64, unique=True)
    bound_at = models.DateTimeField(_("bound at"), default=timezone.now, editable=False)
    last_login_at = models.DateTimeField(_("last login"), null=True, blank=True)

    class Meta:
        verbose_name = _("patient account")
        verbose_name_plural = _("patient accounts")
        ordering = ["-bound_at"]

    def __str__(self) -> str:
        return f"{self.patient.patient_id} (WeChat)"

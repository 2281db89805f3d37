from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from patients.models import Patient
from screening import acuity
from screening.icd10 import code_name

IOP_NORMAL_LOW = Decimal("10")
IOP_NORMAL_HIGH = Decimal("21")
VA_MIN = Decimal("0.01")
VA_MAX = Decimal("2.00")


class Eye(models.TextChoices):
    OD = "OD", _("Right eye (OD)")
    OS = "OS", _("Left eye (OS)")


class RecordStatus(models.TextChoices):
    DRAFT = "draft", _("Waiting for photos")
    IMAGES_UPLOADED = "images_uploaded", _("Photos uploaded")
    ANALYSING = "analysing", _("AI analysing")
    ANALYSED = "analysed", _("Waiting for review")
    REVIEWED = "reviewed", _("Reviewed")
    REPORTED = "reported", _("Reported")


def logmar_from_decimal(va: Decimal | None) -> Decimal | None:
    """Decimal visual acuity 0.8 → logMAR 0.100 (GB/T 11533 rows exact, else to 0.001)."""
    return None if va is None else acuity.logmar_from_decimal(va)


class VaCategory(models.TextChoices):
    """Low vision below the chart (its conventional logMAR: screening.acuity)."""

    CF = acuity.CF, _("Counting fingers (CF)")
    HM = acuity.HM, _("Hand motion (HM)")
    LP = acuity.LP, _("Light perception (LP)")
    NLP = acuity.NLP, _("No light perception (NLP)")


class Correction(models.TextChoices):
    GLASSES = "glasses", _("Glasses")
    CONTACTS = "contacts", _("Contact lenses")


class AcuityKind(models.TextChoices):
    """Which acuity of an eye; the value is the prefix of its form/API field (va_od, cva_os…)."""

    UNCORRECTED = "va", _("Uncorrected visual acuity")
    CORRECTED = "cva", _("Corrected visual acuity")
    PINHOLE = "phva", _("Pinhole visual acuity")


def acuity_columns(kind: str, eye: str) -> tuple[str, str, str]:
    """The stored columns of one acuity: (logMAR, low-vision category, CF distance in cm).

    The uncorrected acuity keeps its original logmar_<eye> column (va_<eye> is its decimal).
    """
    eye = eye.lower()
    logmar = f"logmar_{eye}" if kind == AcuityKind.UNCORRECTED else f"{kind}_logmar_{eye}"
    return logmar, f"{kind}_category_{eye}", f"{kind}_cf_cm_{eye}"


def _logmar_field(label) -> models.DecimalField:
    return models.DecimalField(
        label, max_digits=4, decimal_places=3, null=True, blank=True, editable=False
    )


def _category_field(label) -> models.CharField:
    return models.CharField(
        label, max_length=3, choices=VaCategory.choices, blank=True, editable=False
    )


def _cf_cm_field(label) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(label, null=True, blank=True, editable=False)


def iop_flag(iop: Decimal | None) -> str:
    """'high' above 21 mmHg, 'low' below 10 mmHg, '' inside the normal range or unmeasured."""
    if iop is None:
        return ""
    if iop > IOP_NORMAL_HIGH:
        return "high"
    if iop < IOP_NORMAL_LOW:
        return "low"
    return ""


va_validators = [MinValueValidator(VA_MIN), MaxValueValidator(VA_MAX)]
iop_validators = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("80"))]


class ScreeningRecord(models.Model):
    """One screening visit: measurements, notes and the status of its workflow."""

    patient = models.ForeignKey(
        Patient,
        verbose_name=_("patient"),
        on_delete=models.PROTECT,
        related_name="screening_records",
    )
    screened_at = models.DateTimeField(_("screened at"), default=timezone.now, db_index=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    va_od = models.DecimalField(
        _("visual acuity OD"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=va_validators,
    )
    va_os = models.DecimalField(
        _("visual acuity OS"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=va_validators,
    )
    # Acuity is stored as logMAR (plus the low-vision category, if any): uncorrected in
    # logmar_<eye> (va_<eye> is its decimal, rounded to 0.01, empty for a category),
    # corrected in cva_*, pinhole in phva_*. Entry and display: screening.acuity.
    logmar_od = _logmar_field(_("logMAR OD"))
    logmar_os = _logmar_field(_("logMAR OS"))
    va_category_od = _category_field(_("low vision OD"))
    va_category_os = _category_field(_("low vision OS"))
    va_cf_cm_od = _cf_cm_field(_("counting fingers distance OD (cm)"))
    va_cf_cm_os = _cf_cm_field(_("counting fingers distance OS (cm)"))
    cva_logmar_od = _logmar_field(_("corrected logMAR OD"))
    cva_logmar_os = _logmar_field(_("corrected logMAR OS"))
    cva_category_od = _category_field(_("corrected low vision OD"))
    cva_category_os = _category_field(_("corrected low vision OS"))
    cva_cf_cm_od = _cf_cm_field(_("corrected counting fingers distance OD (cm)"))
    cva_cf_cm_os = _cf_cm_field(_("corrected counting fingers distance OS (cm)"))
    cva_correction_od = models.CharField(
        _("correction OD"), max_length=10, choices=Correction.choices, blank=True
    )
    cva_correction_os = models.CharField(
        _("correction OS"), max_length=10, choices=Correction.choices, blank=True
    )
    phva_logmar_od = _logmar_field(_("pinhole logMAR OD"))
    phva_logmar_os = _logmar_field(_("pinhole logMAR OS"))
    phva_category_od = _category_field(_("pinhole low vision OD"))
    phva_category_os = _category_field(_("pinhole low vision OS"))
    phva_cf_cm_od = _cf_cm_field(_("pinhole counting fingers distance OD (cm)"))
    phva_cf_cm_os = _cf_cm_field(_("pinhole counting fingers distance OS (cm)"))
    iop_od = models.DecimalField(
        _("IOP OD (mmHg)"),
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=iop_validators,
    )
    iop_os = models.DecimalField(
        _("IOP OS (mmHg)"),
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=iop_validators,
    )
    notes = models.TextField(_("notes"), blank=True)
    # The doctor whose worklist holds this screening (empty: any doctor may take it).
    assigned_doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned doctor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=RecordStatus.choices,
        default=RecordStatus.DRAFT,
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("screening record")
        verbose_name_plural = _("screening records")
        ordering = ["-screened_at", "-id"]
        indexes = [models.Index(fields=["status", "screened_at"])]

    def __str__(self) -> str:
        return f"{self.patient.patient_id} {timezone.localtime(self.screened_at):%Y-%m-%d %H:%M}"

    def acuity_of(self, kind: str, eye: str) -> acuity.Acuity | None:
        """One stored acuity (kind: AcuityKind value, eye: 'od'/'os'); None if not measured."""
        logmar, category, cf_cm = acuity_columns(kind, eye)
        return acuity.acuity_from_stored(
            getattr(self, logmar), getattr(self, category), getattr(self, cf_cm)
        )

    def acuity_text(self, kind: str, eye: str, notation: str) -> str:
        """The acuity as written in `notation` ("4.9", "0.8", "指数/30cm"); '' if not measured."""
        return acuity.format_acuity(
            self.acuity_of(kind, eye),
            notation,
            chinese=(translation.get_language() or "").startswith("zh"),
        )

    @property
    def iop_od_flag(self) -> str:
        return iop_flag(self.iop_od)

    @property
    def iop_os_flag(self) -> str:
        return iop_flag(self.iop_os)

    @property
    def is_locked(self) -> bool:
        """A signed review freezes the visit's measurements and photos."""
        return self.status in (RecordStatus.REVIEWED, RecordStatus.REPORTED)


class FundusImage(models.Model):
    """An uploaded fundus photo of one eye; the stored original is never modified."""

    record = models.ForeignKey(
        ScreeningRecord,
        verbose_name=_("screening record"),
        on_delete=models.CASCADE,
        related_name="images",
    )
    eye = models.CharField(_("eye"), max_length=2, choices=Eye.choices)
    file = models.FileField(_("file"), max_length=255)
    # What browsers, the API and reports get (screening.sanitized): the pixels re-encoded,
    # no metadata, nothing appended. Empty only for photos stored before copies existed.
    sanitized_file = models.FileField(
        _("sanitised copy"), max_length=255, blank=True, editable=False
    )
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    format = models.CharField(_("format"), max_length=10)
    mode = models.CharField(_("colour mode"), max_length=10)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    original_name = models.CharField(_("original file name"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now, editable=False)
    # A photo replaced by a technician stays as history; the replacement is used instead.
    superseded_by = models.ForeignKey(
        "self",
        verbose_name=_("replaced by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supersedes",
        editable=False,
    )
    # The doctor's choice of the photo the report uses for this eye (default: the newest
    # gradable photo with AI results).
    chosen_for_report = models.BooleanField(
        _("chosen for the report"), default=False, editable=False
    )

    class Meta:
        verbose_name = _("fundus photo")
        verbose_name_plural = _("fundus photos")
        ordering = ["record", "eye", "uploaded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "sha256"],
                name="unique_image_per_record",
                violation_error_message=_("This photo was already uploaded to this screening."),
            ),
            models.UniqueConstraint(
                fields=["record", "eye"],
                condition=models.Q(chosen_for_report=True),
                name="one_chosen_photo_per_eye",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record} {self.eye} #{self.pk}"

    @property
    def is_superseded(self) -> bool:
        return self.superseded_by_id is not None


class ConclusionCode(models.TextChoices):
    NORMAL = "normal", _("No abnormality found")
    DR_MILD = "dr_mild", _("Mild non-proliferative diabetic retinopathy")
    DR_MODERATE = "dr_moderate", _("Moderate non-proliferative diabetic retinopathy")
    DR_SEVERE = "dr_severe", _("Severe non-proliferative diabetic retinopathy")
    DR_PROLIFERATIVE = "dr_proliferative", _("Proliferative diabetic retinopathy")
    GLAUCOMA_SUSPECT = "glaucoma_suspect", _("Glaucoma suspect")
    CATARACT = "cataract", _("Cataract")
    AMD = "amd", _("Age-related macular degeneration")
    HYPERTENSIVE = "hypertensive", _("Hypertensive retinopathy")
    MYOPIA = "myopia", _("Pathological myopia")
    OTHER = "other", _("Other abnormality")
    UNGRADABLE = "ungradable", _("Photos not gradable")


class Recommendation(models.TextChoices):
    ROUTINE = "routine", _("Routine screening in 12 months")
    FOLLOW_UP = "follow_up", _("Follow-up examination")
    REFER = "refer", _("Refer to an ophthalmologist")
    URGENT = "urgent", _("Urgent referral")
    RETAKE = "retake", _("Retake the photos")


class DrGrade(models.TextChoices):
    """The doctor's ICDR grade of one eye (R0–R4), or that the eye could not be graded."""

    R0 = "0", _("No apparent DR (R0)")
    R1 = "1", _("Mild NPDR (R1)")
    R2 = "2", _("Moderate NPDR (R2)")
    R3 = "3", _("Severe NPDR (R3)")
    R4 = "4", _("Proliferative DR (R4)")
    UNGRADABLE = "ungradable", _("Ungradable")


DR_REFERABLE_FROM = 2  # ICDR: moderate NPDR or worse is referable


def dr_grade_number(value: str | None) -> int | None:
    """A stored grade ``"2"`` → ``2``; ungradable or not graded (empty) → None."""
    return int(value) if value and value.isdigit() else None


@dataclass(frozen=True)
class ReviewEyeDiabetic:
    """One eye's DR grade and macular oedema as a doctor recorded them."""

    eye: str
    label: str
    dr_grade: str  # a DrGrade value, empty when not graded
    dme: bool | None  # None when not assessed

    @property
    def grade(self) -> int | None:
        return dr_grade_number(self.dr_grade)

    @property
    def ungradable(self) -> bool:
        return self.dr_grade == DrGrade.UNGRADABLE

    @property
    def recorded(self) -> bool:
        return bool(self.dr_grade) or self.dme is not None

    @property
    def referable(self) -> bool | None:
        """ICDR grade >= R2 or macular oedema; None when neither says anything."""
        if self.grade is None and self.dme is None:
            return None
        return bool((self.grade is not None and self.grade >= DR_REFERABLE_FROM) or self.dme)

    @property
    def grade_label(self) -> str:
        return str(DrGrade(self.dr_grade).label) if self.dr_grade else ""


@dataclass(frozen=True)
class ReviewEyeConclusion:
    """One eye's conclusion as a doctor recorded it: pick-list codes, ICD-10 codes, free text
    and recommendation (each may be empty)."""

    eye: str
    label: str
    conclusion_codes: list[str]
    diagnosis_codes: list[str]
    text: str
    recommendation: str

    @property
    def recorded(self) -> bool:
        return bool(
            self.conclusion_codes or self.diagnosis_codes or self.text or self.recommendation
        )

    @property
    def conclusion_labels(self) -> list[str]:
        labels = dict(ConclusionCode.choices)
        return [str(labels.get(code, code)) for code in self.conclusion_codes]

    @property
    def diagnoses(self) -> list[tuple[str, str]]:
        """(ICD-10 code, name in the active language)."""
        return [(code, code_name(code)) for code in self.diagnosis_codes]

    @property
    def recommendation_label(self) -> str:
        return str(Recommendation(self.recommendation).label) if self.recommendation else ""


class DoctorReview(models.Model):
    """A doctor's conclusion for a screening; once signed it is never changed, only amended."""

    record = models.ForeignKey(
        ScreeningRecord,
        verbose_name=_("screening record"),
        on_delete=models.PROTECT,
        related_name="reviews",
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("doctor"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    conclusion_codes = models.JSONField(_("conclusion"), default=list)
    conclusion_text = models.TextField(_("conclusion (free text)"), blank=True)
    recommendation = models.CharField(
        _("recommendation"), max_length=20, choices=Recommendation.choices
    )
    recommendation_text = models.TextField(_("recommendation (free text)"), blank=True)
    follow_up_months = models.PositiveSmallIntegerField(
        _("follow-up in (months)"), null=True, blank=True
    )
    follow_up_date = models.DateField(_("follow-up date"), null=True, blank=True)
    # Per eye: the doctor's ICDR grade (empty: not graded) and macular oedema (null: not assessed).
    dr_grade_od = models.CharField(
        _("DR grade, right eye (OD)"),
        max_length=10,
        choices=DrGrade.choices,
        blank=True,
        default="",
    )
    dr_grade_os = models.CharField(
        _("DR grade, left eye (OS)"),
        max_length=10,
        choices=DrGrade.choices,
        blank=True,
        default="",
    )
    dme_od = models.BooleanField(_("macular oedema, right eye (OD)"), null=True, blank=True)
    dme_os = models.BooleanField(_("macular oedema, left eye (OS)"), null=True, blank=True)
    # Per eye: the doctor's conclusion (ConclusionCode values), ICD-10 codes, free text and
    # recommendation. The visit-level fields above stay the summary the report leads with.
    conclusion_codes_od = models.JSONField(
        _("conclusion, right eye (OD)"), default=list, blank=True
    )
    conclusion_codes_os = models.JSONField(_("conclusion, left eye (OS)"), default=list, blank=True)
    diagnosis_codes_od = models.JSONField(
        _("ICD-10 codes, right eye (OD)"), default=list, blank=True
    )
    diagnosis_codes_os = models.JSONField(
        _("ICD-10 codes, left eye (OS)"), default=list, blank=True
    )
    conclusion_text_od = models.TextField(_("conclusion text, right eye (OD)"), blank=True)
    conclusion_text_os = models.TextField(_("conclusion text, left eye (OS)"), blank=True)
    recommendation_od = models.CharField(
        _("recommendation, right eye (OD)"),
        max_length=20,
        choices=Recommendation.choices,
        blank=True,
    )
    recommendation_os = models.CharField(
        _("recommendation, left eye (OS)"),
        max_length=20,
        choices=Recommendation.choices,
        blank=True,
    )
    amendment_reason = models.TextField(_("reason for amendment"), blank=True)
    supersedes = models.OneToOneField(
        "self",
        verbose_name=_("amended review"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
    )
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    # Counts the changes to a record's reviews (each save and the signature add one; a new
    # version continues from the latest): a write names the revision the doctor saw.
    revision = models.PositiveIntegerField(_("revision"), default=1, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("doctor review")
        verbose_name_plural = _("doctor reviews")
        ordering = ["record", "-version"]
        permissions = [("sign_doctorreview", _("Can sign doctor reviews"))]
        constraints = [
            models.UniqueConstraint(fields=["record", "version"], name="unique_review_version"),
            models.UniqueConstraint(
                fields=["record"],
                condition=models.Q(signed_at__isnull=True),
                name="one_open_review_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record} v{self.version}"

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    def conclusion_labels(self) -> list[str]:
        labels = dict(ConclusionCode.choices)
        return [str(labels.get(code, code)) for code in self.conclusion_codes]

    @property
    def diabetic_eyes(self) -> list[ReviewEyeDiabetic]:
        """Right eye then left eye: the DR grade and macular oedema the doctor recorded."""
        return [
            ReviewEyeDiabetic(Eye.OD, str(Eye.OD.label), self.dr_grade_od, self.dme_od),
            ReviewEyeDiabetic(Eye.OS, str(Eye.OS.label), self.dr_grade_os, self.dme_os),
        ]

    @property
    def eye_conclusions(self) -> list[ReviewEyeConclusion]:
        """Right eye then left eye: the doctor's per-eye conclusion."""
        return [
            ReviewEyeConclusion(
                Eye.OD,
                str(Eye.OD.label),
                list(self.conclusion_codes_od),
                list(self.diagnosis_codes_od),
                self.conclusion_text_od,
                self.recommendation_od,
            ),
            ReviewEyeConclusion(
                Eye.OS,
                str(Eye.OS.label),
                list(self.conclusion_codes_os),
                list(self.diagnosis_codes_os),
                self.conclusion_text_os,
                self.recommendation_os,
            ),
        ]

    @property
    def recorded_eye_conclusions(self) -> list[ReviewEyeConclusion]:
        """The eyes with anything recorded."""
        return [eye for eye in self.eye_conclusions if eye.recorded]

    @property
    def graded_diabetic_eyes(self) -> list[ReviewEyeDiabetic]:
        """The eyes with a DR grade or a macular-oedema answer."""
        return [eye for eye in self.diabetic_eyes if eye.recorded]

    @property
    def has_diabetic_grading(self) -> bool:
        return bool(self.graded_diabetic_eyes)


class RecallStatus(models.TextChoices):
    """Where recalling a patient for a follow-up stands; "due" until staff mark otherwise."""

    DUE = "due", _("Due")
    CONTACTED = "contacted", _("Contacted")
    RESCHEDULED = "rescheduled", _("Rescheduled")
    CAME_BACK = "came_back", _("Came back")
    DECLINED = "declined", _("Declined")


# Recalls still to be worked on; the others are closed.
RECALL_OPEN_STATUSES = (RecallStatus.DUE, RecallStatus.CONTACTED, RecallStatus.RESCHEDULED)


class FollowUpContact(models.Model):
    """One step of recalling a patient for a visit's follow-up; the newest step is the state."""

    record = models.ForeignKey(
        ScreeningRecord,
        verbose_name=_("screening record"),
        on_delete=models.PROTECT,
        related_name="follow_up_contacts",
    )
    # The signed review whose follow-up date was being recalled (an amendment starts afresh).
    review = models.ForeignKey(
        DoctorReview,
        verbose_name=_("doctor review"),
        on_delete=models.PROTECT,
        related_name="follow_up_contacts",
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=[(value, label) for value, label in RecallStatus.choices if value != "due"],
    )
    new_date = models.DateField(_("new follow-up date"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("follow-up contact")
        verbose_name_plural = _("follow-up contacts")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["review", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="rescheduled", new_date__isnull=False)
                | (~models.Q(status="rescheduled") & models.Q(new_date__isnull=True)),
                name="follow_up_new_date_only_when_rescheduled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record} {self.status}"

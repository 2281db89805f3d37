"""The labelled-data export: signed reviews → sanitised photos + labels.csv + manifest."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image

from ai_engine.management.commands.train_model import Command as TrainModel
from ai_engine.models import AnalysisStatus
from ai_engine.training.data import load_datasets
from ai_engine.training.labels import parse_labels
from ai_engine.training.lineage import check_labels, read_parent, source_counts
from ai_engine.training_export import (
    NO_PER_EYE_LABEL,
    NOT_A_SCREENING_LABEL,
    SKIP_DOCTOR_UNGRADABLE,
    SKIP_NO_AI,
    SKIP_SUPERSEDED,
    SKIP_UNGRADABLE,
    export_salt,
    training_patient_key,
    training_set_export,
)
from core.models import AuditEvent
from screening.models import DoctorReview, FundusImage, RecordStatus
from screening.services import image_replace, image_upload
from tests.ai_results import add_analysis
from tests.factories import ModelPackageFactory, PatientFactory, ScreeningRecordFactory

ODIR = Path("fundus/images/odir")
PHOTOS = {
    "normal": ODIR / "normal" / "1034_left.jpg",
    "cataract": ODIR / "cataract" / "0_left.jpg",
    "glaucoma": ODIR / "glaucoma",
}
EXPORT_AUDIT_TYPE = "ai_engine.trainingscreening"
SIGNED = dt.datetime(2026, 11, 3, 9, 41, 17, tzinfo=dt.UTC)


def small_photo(path: Path, patient, *, seed: int) -> SimpleUploadedFile:
    """The real photo at 256 px (the smallest upload allowed), with the patient's identifiers in its EXIF and file name (as a
    camera or a careless technician might leave them)."""
    with Image.open(path) as image:
        pixels = image.convert("RGB").resize((256, 256))
    # Every upload its own sha256: a corner patch the JPEG encoder cannot smooth away.
    pixels.paste((seed * 37 % 256, seed * 11 % 256, 200), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x010E] = f"{patient.patient_id} {patient.national_id} {patient.phone}"  # description
    buffer = io.BytesIO()
    pixels.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    name = f"{patient.patient_id}_{patient.phone}.jpg"
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


@pytest.fixture
def photos(shared_data) -> dict[str, Path]:
    glaucoma = sorted((shared_data / PHOTOS["glaucoma"]).glob("*.jpg"))[0]
    return {
        "normal": shared_data / PHOTOS["normal"],
        "cataract": shared_data / PHOTOS["cataract"],
        "glaucoma": glaucoma,
    }


class Clinic:
    """Builds signed screenings: photos per eye, AI status per photo, review versions."""

    def __init__(self, technician, doctor, photos: dict[str, Path]) -> None:
        self.technician = technician
        self.doctor = doctor
        self.photos = photos
        self.package = ModelPackageFactory()
        self.patients = []
        self.seed = 0

    def upload(self, kind: str, patient) -> SimpleUploadedFile:
        self.seed += 1
        return small_photo(self.photos[kind], patient, seed=self.seed)

    def patient(self):
        n = len(self.patients)
        patient = PatientFactory(
            created_by=self.technician,
            name=f"王秀英{n}",
            national_id=f"11010519491231{n:03d}X",
            phone=f"1391234{n:04d}",
            patient_id=f"P2026{n:05d}",
        )
        self.patients.append(patient)
        return patient

    def screening(
        self,
        patient=None,
        *,
        eyes: dict[str, str],
        status: str = AnalysisStatus.DONE,
        reviews: list[dict] | None = None,
        replace: tuple[str, ...] = (),
    ):
        """``eyes``: {"OD": "cataract"} → a photo of that kind (analysed with ``status``; the
        eyes in ``replace`` retaken once); ``reviews``: their fields, oldest first
        (``signed_at=None`` for a draft)."""
        patient = patient or self.patient()
        record = ScreeningRecordFactory(patient=patient, operator=self.technician)
        for eye, kind in eyes.items():
            image = image_upload(
                actor=self.technician,
                record=record,
                eye=eye,
                uploaded_file=self.upload(kind, patient),
            )
            add_analysis(image, self.package, status=status)
            if eye in replace:
                image = image_replace(
                    actor=self.technician, image=image, uploaded_file=self.upload(kind, patient)
                )
                add_analysis(image, self.package, status=status)
        record.status = RecordStatus.REVIEWED
        record.save(update_fields=["status"])
        previous = None
        for version, fields in enumerate(reviews or [], start=1):
            values = {"recommendation": "routine", "signed_at": SIGNED, **fields}
            previous = DoctorReview.objects.create(
                record=record, version=version, doctor=self.doctor, supersedes=previous, **values
            )
        return record


def read_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def per_eye(od: list[str], os_: list[str], **more) -> dict:
    return {"conclusion_codes_od": od, "conclusion_codes_os": os_, **more}


@pytest.fixture
def clinic(db, technician, doctor, photos) -> Clinic:
    return Clinic(technician, doctor, photos)


@pytest.fixture
def signed_clinic(clinic: Clinic) -> Clinic:
    """Two dozen ordinary signed screenings plus one of each special case."""
    kinds = ["normal", "cataract", "glaucoma"]
    codes = {"normal": "normal", "cataract": "cataract", "glaucoma": "glaucoma_suspect"}
    for n in range(24):
        od, os_ = kinds[n % 3], kinds[(n + 1) % 3] if n % 2 else "normal"
        clinic.screening(eyes={"OD": od, "OS": os_}, reviews=[per_eye([codes[od]], [codes[os_]])])
    return clinic


def test_export_writes_the_gradable_photos_of_signed_reviews_with_per_eye_labels(
    signed_clinic: Clinic, admin_user, tmp_path: Path
) -> None:
    # Given the two dozen ordinary screenings and the special cases
    clinic = signed_clinic
    amended = clinic.screening(
        eyes={"OD": "cataract", "OS": "normal"},
        reviews=[
            per_eye(["normal"], ["normal"]),
            per_eye(["cataract"], ["normal"], amendment_reason="missed the lens"),
            per_eye(["glaucoma_suspect"], ["normal"], signed_at=None),  # an open draft
        ],
    )
    clinic.screening(
        eyes={"OD": "glaucoma"}, reviews=[per_eye(["glaucoma_suspect"], [], signed_at=None)]
    )
    clinic.screening(
        eyes={"OD": "normal", "OS": "normal"},
        status=AnalysisStatus.UNGRADABLE,
        reviews=[per_eye(["normal"], ["normal"])],
    )
    clinic.screening(
        eyes={"OD": "normal"}, status=AnalysisStatus.QUEUED, reviews=[per_eye(["normal"], [])]
    )
    visit_both = clinic.screening(
        eyes={"OD": "cataract", "OS": "normal"}, reviews=[{"conclusion_codes": ["cataract"]}]
    )
    visit_one = clinic.screening(
        eyes={"OS": "cataract"}, reviews=[{"conclusion_codes": ["cataract"]}]
    )
    visit_normal = clinic.screening(
        eyes={"OD": "normal", "OS": "normal"}, reviews=[{"conclusion_codes": ["normal"]}]
    )
    diabetic = clinic.screening(
        eyes={"OD": "normal", "OS": "normal"},
        reviews=[
            per_eye(
                ["dr_moderate"],
                ["ungradable"],
                dr_grade_od="2",
                dme_od=True,
                dr_grade_os="ungradable",
            )
        ],
    )
    replaced = clinic.screening(
        eyes={"OD": "normal"}, replace=("OD",), reviews=[per_eye(["normal"], [])]
    )

    # When the administrator exports
    export = training_set_export(out=tmp_path / "export", actor=admin_user)

    # Then every gradable photo of the latest signed versions is there, with per-eye labels
    rows = read_rows(export.folder)
    by_patient: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_patient.setdefault(row["patient"], []).append(row)

    def labels_of(record) -> dict[str, tuple[str, str, str]]:
        key = training_patient_key(patient_pk=record.patient_id, salt=_salt())
        return {r["eye"]: (r["label"], r["dr_grade"], r["dme"]) for r in by_patient.get(key, [])}

    assert labels_of(amended) == {"right": ("cataract", "", ""), "left": ("normal", "", "")}
    assert labels_of(visit_both) == {}  # which eye has the cataract? not said: left out
    assert labels_of(visit_one) == {"left": ("cataract", "", "")}
    assert labels_of(visit_normal) == {"right": ("normal", "", ""), "left": ("normal", "", "")}
    assert labels_of(diabetic) == {"right": ("", "2", "1")}
    assert labels_of(replaced) == {"right": ("normal", "", "")}
    assert len(rows) == 48 + 2 + 1 + 2 + 1 + 1
    assert {r["dataset"] for r in rows} == {"clinic"}
    assert all((export.folder / r["file"]).is_file() for r in rows)
    assert sorted(p.name for p in (export.folder / "images").iterdir()) == sorted(
        Path(r["file"]).name for r in rows
    )
    manifest = json.loads((export.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == export.manifest
    assert manifest["photos"] == 55
    assert manifest["patients"] == 24 + 5
    assert manifest["screenings"] == 24 + 8  # the unsigned draft is not one of them
    assert manifest["amended_reviews"] == 1
    assert manifest["doctors"] == 1
    assert manifest["signed_months"] == {"first": "2026-11", "last": "2026-11"}
    assert manifest["per_label"] == {
        "label": {"cataract": 14, "glaucoma": 12, "normal": 28},
        "dr_grade": {"2": 1},
        "dme": {"1": 1},
    }
    assert manifest["skipped_photos"] == {
        NO_PER_EYE_LABEL: 2,
        SKIP_DOCTOR_UNGRADABLE: 1,
        SKIP_NO_AI: 1,
        SKIP_SUPERSEDED: 1,
        SKIP_UNGRADABLE: 2,
    }
    assert manifest["photos_without_label"] == {
        "label": {NOT_A_SCREENING_LABEL: 1},
        "dr_grade": {"no DR grade": 54},
        "dme": {"macular oedema not assessed": 54},
    }
    # And the export is audited, by counts
    event = AuditEvent.objects.get(object_type=EXPORT_AUDIT_TYPE)
    assert (event.actor, event.action) == (admin_user, AuditEvent.Action.CREATE)
    assert event.changes["photos"] == [None, 55]
    assert event.changes["patients"] == [None, 29]


def _salt() -> bytes:
    return export_salt()


def test_no_exported_file_carries_a_name_phone_id_number_patient_id_or_signing_time(
    clinic: Clinic, tmp_path: Path
) -> None:
    # Given signed screenings whose uploads carry the identifiers in EXIF and file names
    for n in range(6):
        clinic.screening(
            eyes={"OD": ["normal", "cataract", "glaucoma"][n % 3], "OS": "normal"},
            reviews=[
                per_eye(
                    ["cataract"] if n % 3 == 1 else ["normal"],
                    ["normal"],
                    conclusion_text_od="王秀英 复查",
                )
            ],
        )
    # (one stored before sanitised copies existed: its copy is made while exporting)
    FundusImage.objects.filter(pk=FundusImage.objects.order_by("pk").first().pk).update(
        sanitized_file=""
    )
    # When they are exported
    export = training_set_export(out=tmp_path / "export")
    # Then no file (name or bytes, JPEG EXIF included) holds any direct identifier
    files = [p for p in export.folder.rglob("*") if p.is_file()]
    assert len(files) == 12 + 2
    needles = {clinic.doctor.username, SIGNED.isoformat()[:19], "2026-11-03"}
    for patient in clinic.patients:
        needles |= {patient.name, patient.phone, patient.national_id, patient.patient_id}
    for path in files:
        content = path.read_bytes()
        text = str(path.relative_to(tmp_path))
        for needle in needles:
            assert needle not in text
            assert needle.encode("utf-8") not in content, (path.name, needle)
            assert needle.encode("utf-16-le") not in content, (path.name, needle)
    for path in (export.folder / "images").iterdir():
        with Image.open(path) as image:
            assert dict(image.getexif()) == {}
            assert "comment" not in image.info


def test_the_same_patient_gets_the_same_key_across_exports_and_another_with_another_salt(
    clinic: Clinic, tmp_path: Path, settings
) -> None:
    patient = clinic.patient()
    clinic.screening(patient, eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [])])
    settings.AI_TRAINING_KEY_SALT = "first salt"
    first = read_rows(training_set_export(out=tmp_path / "a").folder)
    clinic.screening(patient, eyes={"OS": "cataract"}, reviews=[per_eye([], ["cataract"])])
    second = read_rows(training_set_export(out=tmp_path / "b").folder)
    settings.AI_TRAINING_KEY_SALT = "second salt"
    third = read_rows(training_set_export(out=tmp_path / "c").folder)

    assert [r["patient"] for r in first] == [second[0]["patient"]]
    assert {r["patient"] for r in second} == {first[0]["patient"]}
    assert len(second) == 2
    assert {r["patient"] for r in third} != {first[0]["patient"]}
    assert first[0]["patient"].startswith("clinic-")


def test_since_keeps_reviews_whose_latest_signed_version_is_that_recent(
    clinic: Clinic, tmp_path: Path
) -> None:
    old = clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [])])
    recent = clinic.screening(
        eyes={"OD": "cataract"},
        reviews=[
            per_eye(["normal"], []),
            per_eye(["cataract"], [], signed_at=SIGNED + dt.timedelta(days=40)),
        ],
    )
    export = training_set_export(out=tmp_path / "x", since=dt.date(2026, 12, 1))
    rows = read_rows(export.folder)
    key = training_patient_key(patient_pk=recent.patient_id, salt=_salt())
    assert [(r["patient"], r["label"]) for r in rows] == [(key, "cataract")]
    assert export.manifest["signed_months"] == {"first": "2026-12", "last": "2026-12"}
    assert old.patient_id != recent.patient_id


def test_a_folder_that_is_not_empty_is_refused_and_nothing_is_written(
    clinic: Clinic, tmp_path: Path
) -> None:
    clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [])])
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="is not an empty folder"):
        call_command("export_training_set", "--out", str(out))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "media"]
    assert not AuditEvent.objects.filter(object_type=EXPORT_AUDIT_TYPE).exists()


def test_a_failed_export_leaves_no_folder_behind(
    clinic: Clinic, tmp_path: Path, monkeypatch
) -> None:
    clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [])])
    from ai_engine import training_export

    def fail_halfway(folder: Path, rows, manifest) -> None:
        (folder / "images").mkdir()
        (folder / "labels.csv").write_text("file\n")
        raise OSError("disk full")

    monkeypatch.setattr(training_export, "_write", fail_halfway)
    out = tmp_path / "exports" / "dec"
    with pytest.raises(OSError, match="disk full"):
        training_set_export(out=out)
    assert list((tmp_path / "exports").iterdir()) == []
    assert not AuditEvent.objects.filter(object_type=EXPORT_AUDIT_TYPE).exists()


def test_nothing_to_export_is_an_error(clinic: Clinic, tmp_path: Path) -> None:
    clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [], signed_at=None)])
    with pytest.raises(ValidationError) as caught:
        training_set_export(out=tmp_path / "x")
    assert caught.value.messages == [
        "No gradable photo of a signed review to export (0 signed screenings)."
    ]
    assert not (tmp_path / "x").exists()


def test_command_exports_and_audits_with_the_named_actor(
    clinic: Clinic, admin_user, tmp_path: Path
) -> None:
    clinic.screening(
        eyes={"OD": "normal", "OS": "glaucoma"}, reviews=[per_eye(["normal"], ["glaucoma_suspect"])]
    )
    out = io.StringIO()
    call_command(
        "export_training_set",
        "--since",
        "2026-11-01",
        "--out",
        str(tmp_path / "e"),
        "--actor",
        admin_user.username,
        stdout=out,
    )
    assert (
        "Exported 2 photos of 1 patients (1 signed screenings, 0 photos left out)" in out.getvalue()
    )
    event = AuditEvent.objects.get(object_type=EXPORT_AUDIT_TYPE)
    assert (event.actor, event.source) == (admin_user, "command")
    with pytest.raises(CommandError, match="expected a date"):
        call_command("export_training_set", "--since", "yesterday", "--out", str(tmp_path / "f"))


def test_admin_action_downloads_the_selected_screenings_as_a_zip(
    clinic: Clinic, admin_user, doctor, client
) -> None:
    chosen = clinic.screening(eyes={"OD": "cataract"}, reviews=[per_eye(["cataract"], [])])
    clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [])])
    url = reverse("admin:ai_engine_trainingscreening_changelist")
    data = {"action": "export_training_set", "_selected_action": [chosen.pk]}

    client.force_login(doctor)
    assert client.post(url, data).status_code == 403
    assert not AuditEvent.objects.filter(object_type=EXPORT_AUDIT_TYPE).exists()

    client.force_login(admin_user)
    response = client.post(url, data)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert sorted(n for n in names if not n.startswith("training-set/images/")) == [
        "training-set/labels.csv",
        "training-set/manifest.json",
    ]
    rows = list(csv.DictReader(io.StringIO(archive.read("training-set/labels.csv").decode())))
    assert [(r["eye"], r["label"]) for r in rows] == [("right", "cataract")]
    assert AuditEvent.objects.get(object_type=EXPORT_AUDIT_TYPE).actor == admin_user


def test_train_model_fine_tunes_the_active_package_on_the_export_mixed_with_public_data(
    signed_clinic: Clinic, shared_data: Path, tmp_path: Path
) -> None:
    # Given an export of the two dozen signed screenings (48 photos of 24 patients)
    export = training_set_export(out=tmp_path / "export")
    # When the bundled screening package is fine-tuned on it, one clinic photo per public one
    out = tmp_path / "candidate"
    call_command(
        "train_model", "--init", "ophai-screening",
        "--data", str(export.folder / "labels.csv"),
        "--data", str(shared_data / "fundus" / "labels.csv"),
        "--mix", "clinic=1,public=1", "--input-size", "32", "--epochs", "1",
        "--phase1-epochs", "0", "--batch-size", "8", "--val-fraction", "0.25", "--device", "cpu",
        "--no-progress", "--fp32", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
        stdout=(tmp_path / "log.txt").open("w"),
    )  # fmt: skip
    # Then the candidate's card names its parent and both sources, 48 photos each
    card = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert card["lineage"]["parent"]["name"] == "ophai-screening"
    sources = {s["source"]: s for s in card["lineage"]["data_sources"]}
    assert (sources["clinic"]["photos_used"], sources["clinic"]["patients_used"]) == (48, 24)
    # Whole patients: the public side stops at the first patient that reaches 48 photos.
    assert sources["public"]["photos_used"] in (48, 49)
    assert sources["public"]["datasets"] == {"odir": 1474}
    public = sources["public"]["photos_used"]
    assert card["lineage"]["mix"]["achieved"] == {
        "clinic": round(48 / (48 + public), 4),
        "public": round(public / (48 + public), 4),
    }


def test_admin_action_with_nothing_to_export_says_so_in_chinese(
    clinic: Clinic, admin_user, client
) -> None:
    ungradable = clinic.screening(
        eyes={"OD": "normal"}, status=AnalysisStatus.UNGRADABLE, reviews=[per_eye(["normal"], [])]
    )
    client.force_login(admin_user)
    client.cookies["django_language"] = "zh-hans"
    response = client.post(
        reverse("admin:ai_engine_trainingscreening_changelist"),
        {"action": "export_training_set", "_selected_action": [ungradable.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "没有可导出的已签署审核的可分级照片（已签署的筛查 1 次）。"
    ]
    assert "用于训练的筛查" in response.content.decode()
    assert not AuditEvent.objects.filter(object_type=EXPORT_AUDIT_TYPE).exists()


def test_the_manifests_train_commands_read_the_export_with_the_public_data(
    clinic: Clinic, shared_data: Path, tmp_path: Path
) -> None:
    # Given an export with per-eye conclusions, DR grades and macular oedema answers
    clinic.screening(
        eyes={"OD": "cataract", "OS": "glaucoma"},
        reviews=[
            per_eye(["cataract"], ["glaucoma_suspect"], dr_grade_od="0", dr_grade_os="1",
                    dme_od=False, dme_os=True)
        ],
    )  # fmt: skip
    clinic.screening(eyes={"OD": "normal"}, reviews=[per_eye(["normal"], [], dr_grade_od="4")])
    export = training_set_export(out=tmp_path / "export")
    parser = TrainModel().create_parser("manage.py", "train_model")
    clinic_photos = {}
    for name, command in export.manifest["train_commands"].items():
        words = command.replace("EXPORT_DIR", str(export.folder)).split()[3:]
        words = [w.replace("../shared/data", str(shared_data)) for w in words]
        options = parser.parse_args(words)
        # When the command's data is read as train_model reads it
        parent = read_parent(options.init)
        labelled = load_datasets(
            options.data,
            task=parent.card.task,
            labels=check_labels(parent, parse_labels(options.labels)),
            label_column=options.label_column,
            positive=options.positive,
        )
        clinic_photos[name] = source_counts(labelled)["clinic"]["photos"]
    # Then each package finds its clinic rows beside the public ones
    assert clinic_photos == {"ophai-screening": 3, "ophai-dr": 3, "ophai-dme": 2}

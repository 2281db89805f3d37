"""The learning loop end to end on a small synthetic clinic with real photos (../shared/data):
signed reviews → export → a minute of training → shadow → the promotion gate refusing a worse
candidate and passing a better one → rollback.

Part one of the clinic (12 screenings) is exported and trained on; part two (10 screenings of
new patients) is photographed while the candidates run in shadow through the real analysis
pipeline (django-q2 runs inline), then signed: the held-out cases the gate compares on.

A minute of training cannot promise a better model, so the candidates whose gate outcome the
test asserts are derived from the trained package by changing only their cards' cataract
threshold: with the same weights every package sees the same probabilities, so the threshold
with the lowest Cohen's kappa makes the active package and a candidate that reads cataract
the same way (not better: refused), and the threshold with the highest kappa the better
candidate (passed). On any ranking of the eyes some threshold's kappa differs from another's,
so this holds whatever the minute of training learnt. The sensitivity/specificity margin is
opened (it is tested in test_learning.py) so that only the kappa rule decides here. The trained
candidate itself goes through promote_model too, and its outcome must follow the printed table.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ai_engine.learning import cohen_kappa, promotion_gate
from ai_engine.models import Analysis, AnalysisStatus, ModelPackage, PackageState, PromotionRecord
from ai_engine.selectors import record_ai_result
from ai_engine.services import package_register, package_set_state
from ai_engine.tasks import analyse_image
from ai_engine.training_export import training_set_export
from screening.models import DoctorReview, RecordStatus
from screening.services import image_upload
from tests.ai_engine.test_training_export import small_photo
from tests.ai_results import add_analysis
from tests.factories import ModelPackageFactory, PatientFactory, ScreeningRecordFactory

ODIR = Path("fundus/images/odir")
CODES = {"normal": "normal", "cataract": "cataract", "glaucoma": "glaucoma_suspect"}
# Per screening (OD, OS): normal, cataract and glaucoma eyes in both parts.
EYES = [
    ("cataract", "normal"),
    ("normal", "cataract"),
    ("glaucoma", "normal"),
    ("cataract", "cataract"),
    ("normal", "glaucoma"),
]
NAME = "clinic-screen"


@pytest.fixture
def gate_settings(settings):
    settings.AI_PROMOTION_MARGIN = 1.0
    settings.AI_PROMOTION_MIN_CASES = 4
    settings.AI_PROMOTION_MAIN_CONDITION = "dr"  # the cards' main_condition (cataract) wins


class Clinic:
    """Signed screenings of new patients with real ODIR photos, one photo file per upload."""

    def __init__(self, technician, doctor, shared_data: Path) -> None:
        self.technician, self.doctor = technician, doctor
        self.files = {
            kind: iter(sorted((shared_data / ODIR / kind).glob("*.jpg"))) for kind in CODES
        }
        self.seed = 0

    def photograph(self, eyes: tuple[str, str]):
        n = self.seed
        patient = PatientFactory(created_by=self.technician, phone=f"1391234{n:04d}")
        record = ScreeningRecordFactory(patient=patient, operator=self.technician)
        images = []
        for eye, kind in zip(("OD", "OS"), eyes, strict=True):
            self.seed += 1
            upload = small_photo(next(self.files[kind]), patient, seed=self.seed)
            images.append(
                image_upload(actor=self.technician, record=record, eye=eye, uploaded_file=upload)
            )
        return record, images

    def sign(self, record, eyes: tuple[str, str]) -> None:
        record.status = RecordStatus.REVIEWED
        record.save(update_fields=["status"])
        od, os_ = [CODES[eyes[0]]], [CODES[eyes[1]]]
        DoctorReview.objects.create(
            record=record,
            doctor=self.doctor,
            conclusion_codes=sorted({*od, *os_}),
            conclusion_codes_od=od,
            conclusion_codes_os=os_,
            recommendation="routine",
            signed_at=timezone.now() - dt.timedelta(minutes=5),
        )


def derive(trained: Path, out: Path, version: str, cataract_threshold: float) -> Path:
    """The trained package under another version with another cataract threshold (same weights)."""
    shutil.copytree(trained, out)
    card = json.loads((out / "model.json").read_text(encoding="utf-8"))
    card["version"] = version
    for label in card["labels"]:
        if label["code"] == "C":
            label["threshold"] = cataract_threshold
    (out / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return out


def thresholds_by_kappa(trained: ModelPackage, truth: dict[int, bool]) -> tuple[float, float]:
    """The cataract thresholds with the lowest and the highest kappa on the gradable eyes the
    trained package read (the same eyes, probabilities and cases the gate will use)."""
    probability = {
        a.image_id: a.findings.get(label_code="C").probability
        for a in Analysis.objects.filter(package=trained, status=AnalysisStatus.DONE)
    }
    assert len(probability) >= 8  # the test needs most eyes gradable

    def kappa(threshold: float) -> float:
        calls = [(probability[i] >= threshold, truth[i]) for i in probability]
        tp = sum(ai and doc for ai, doc in calls)
        fp = sum(ai and not doc for ai, doc in calls)
        fn = sum(doc and not ai for ai, doc in calls)
        tn = sum(not ai and not doc for ai, doc in calls)
        return cohen_kappa(tp, fp, fn, tn) or 0.0

    candidates = sorted({*probability.values(), 1.0})
    low = min(candidates, key=kappa)
    high = max(candidates, key=kappa)
    assert kappa(high) > kappa(low)
    return low, high


def promote(version: str, reason: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("promote_model", NAME, version, "--reason", reason, stdout=out)
    except CommandError as exc:
        assert "was not promoted; nothing changed" in str(exc)
        return False, out.getvalue()
    return True, out.getvalue()


def active_versions() -> list[str]:
    return sorted(
        ModelPackage.objects.filter(state=PackageState.ACTIVE).values_list("version", flat=True)
    )


def test_export_train_shadow_promote_and_roll_back(
    db, technician, doctor, shared_data, gate_settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    clinic = Clinic(technician, doctor, shared_data)
    # Given 12 signed screenings (24 photos of 12 patients), analysed by the old system
    old_system = ModelPackageFactory(state=PackageState.INACTIVE)
    for n in range(12):
        eyes = EYES[n % len(EYES)]
        record, images = clinic.photograph(eyes)
        for image in images:
            add_analysis(image, old_system)
        clinic.sign(record, eyes)

    # When they are exported and a candidate is trained on them with public photos (1:1)
    export = training_set_export(out=tmp_path / "export")
    trained_dir = tmp_path / "trained"
    call_command(
        "train_model", "--data", str(export.folder / "labels.csv"),
        "--data", str(shared_data / "fundus" / "labels.csv"), "--mix", "clinic=1,public=1",
        "--task", "multilabel", "--labels", "normal=N,cataract=C,glaucoma=G",
        "--arch", "resnet10t", "--input-size", "64", "--epochs", "1", "--phase1-epochs", "0",
        "--lr2", "1e-3", "--batch-size", "8", "--val-fraction", "0.25", "--threads", "1",
        "--device", "cpu", "--no-progress", "--fp32", "--main-condition", "cataract",
        "--cache-dir", str(tmp_path / "cache"), "--name", NAME, "--model-version", "1.1.0",
        "--out", str(trained_dir),
        stdout=(tmp_path / "train.log").open("w"),
    )  # fmt: skip
    # Then its card lists the 12 clinic patients' salted keys it saw, for the gate
    card = json.loads((trained_dir / "model.json").read_text(encoding="utf-8"))
    with (export.folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        exported = {row["patient"] for row in csv.DictReader(handle)}
    assert len(exported) == 12
    assert sorted(card["trained_on_keys"]) == sorted(exported)
    assert card["main_condition"] == "cataract"

    # When the candidate runs in shadow while 10 new screenings are photographed and signed
    trained = package_register(path=trained_dir)
    package_set_state(package=trained, state=PackageState.SHADOW)
    truth: dict[int, bool] = {}
    held_out = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(10):
            eyes = EYES[(n + 2) % len(EYES)]
            record, images = clinic.photograph(eyes)
            truth.update(
                {image.pk: kind == "cataract" for image, kind in zip(images, eyes, strict=True)}
            )
            held_out.append((record, eyes))
    # Then its analyses are shadow runs, shown nowhere (the mini-program's AI result here)
    shadow_runs = Analysis.objects.filter(package=trained)
    assert shadow_runs.count() == 20
    assert set(shadow_runs.values_list("shadow", flat=True)) == {True}
    result = record_ai_result(record=held_out[0][0], language="en")
    assert NAME not in json.dumps(result, ensure_ascii=False, default=str)

    # Given the active package and two candidates derived from the trained one (see above)
    worst, best = thresholds_by_kappa(trained, truth)
    active = package_register(
        path=derive(trained_dir, tmp_path / "a", "1.0.0", worst), activate=True
    )
    worse = package_register(path=derive(trained_dir, tmp_path / "w", "1.1.1-worse", worst))
    better = package_register(path=derive(trained_dir, tmp_path / "b", "1.1.2-better", best))
    for candidate in (worse, better):
        package_set_state(package=candidate, state=PackageState.SHADOW)
    with django_capture_on_commit_callbacks(execute=True):
        for record, _eyes in held_out:
            for image in record.images.all():
                analyse_image(image.pk)
    for record, eyes in held_out:
        clinic.sign(record, eyes)
    assert active_versions() == ["1.0.0"]
    # The screening's AI result names the active package only, never a shadow one
    shown = json.dumps(record_ai_result(record=held_out[0][0], language="en"), default=str)
    assert "1.0.0" in shown
    assert not {"1.1.0", "1.1.1-worse", "1.1.2-better"} & set(shown.replace('"', " ").split())

    # When the trained candidate is put to the gate: its table is printed, the rule followed
    expected = promotion_gate(trained).passed
    promoted, table = promote("1.1.0", "a minute of training on the clinic's own reviews")
    assert "candidate clinic-screen 1.1.0  vs  active clinic-screen 1.0.0" in table
    assert f"gate: {'passed' if expected else 'REFUSED'}" in table
    assert promoted is expected
    if promoted:
        call_command(
            "rollback_model", NAME, "--reason", "keep the test's baseline", stdout=io.StringIO()
        )
    assert active_versions() == ["1.0.0"]

    # Then the worse candidate is refused, nothing changed
    promoted, table = promote("1.1.1-worse", "try")
    assert promoted is False
    assert "cataract: kappa" in table and "(main condition)" in table
    assert active_versions() == ["1.0.0"]
    # And the better one replaces the active package, recorded with its comparison
    promoted, table = promote("1.1.2-better", "higher agreement on cataract")
    assert promoted is True
    assert "gate: passed" in table
    assert active_versions() == ["1.1.2-better"]
    record = PromotionRecord.objects.filter(package=better).get()
    assert (record.override, record.previous_active) == (False, [active.pk])
    assert record.comparison["main_condition"] == "cataract"

    # When it is rolled back, the previous active set is restored
    call_command("rollback_model", NAME, "--reason", "doctors disagree", stdout=io.StringIO())
    assert active_versions() == ["1.0.0"]
    assert ModelPackage.objects.get(pk=better.pk).state == PackageState.INACTIVE

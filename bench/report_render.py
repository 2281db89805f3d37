"""Seconds per report and PDF size: two camera-resolution photos and two heatmaps, template summary.

    .venv/bin/python bench/report_render.py [--runs 5] [--photos ../shared/data/highres] [--batch 20]

Targets: ≤ 1.5 s per report and ≤ 1.5 MB per PDF. Each run is a full `report_generate` (facts,
template summary, image downscaling, WeasyPrint, storage, database), on a throwaway SQLite
database and media folder. `--batch N` also prints that report N times as one batch PDF
(`report_batch_print`) and reports its time and the process's peak memory. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 1.5
TARGET_BYTES = 1.5 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "highres")
    parser.add_argument("--batch", type=int, default=0, help="reports in one batch PDF")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ophai-bench-report-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "clinic.settings",
            "DJANGO_ENV": "development",
            "OPHAI_VAR_DIR": str(workdir),
            "MEDIA_ROOT": str(workdir / "media"),
            "LLM_BASE_URL": "",  # the template summary: this measures rendering, not an LLM
            "REVIEW_SIGNED_TASK": "",
            "FUNDUS_ANALYSIS_TASK": "",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from core.roles import role_assign

    users = get_user_model().objects
    tech = users.create_user("bench-tech", password=None)
    doctor = users.create_user("bench-doctor", password=None)
    role_assign(user=tech, role="technician")
    role_assign(user=doctor, role="doctor")
    record, sizes = reviewed_record(args.photos, technician=tech, doctor=doctor)
    print(f"photos: {', '.join(f'{w}×{h}' for w, h in sizes)} (+ 2 full-size heatmap PNGs)")

    from reports.services import report_generate

    report_generate(record=record, actor=doctor)  # warm-up: WeasyPrint's import, fonts
    seconds, sizes_bytes = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        report = report_generate(record=record, actor=doctor)
        seconds.append(time.perf_counter() - started)
        sizes_bytes.append(report.pdf_size)

    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        report_generate(record=record, actor=doctor)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    median = statistics.median(seconds)
    size = max(sizes_bytes)
    print(
        f"report_generate: median {median:.2f} s, min {min(seconds):.2f} s, max {max(seconds):.2f} s "
        f"over {args.runs} runs (target ≤ {TARGET_SECONDS} s: {'ok' if median <= TARGET_SECONDS else 'MISSED'})"
    )
    print(
        f"PDF size: {size / 1024 / 1024:.2f} MB, {report.pdf.name} "
        f"(target ≤ 1.5 MB: {'ok' if size <= TARGET_BYTES else 'MISSED'})"
    )
    if args.batch:
        batch_figures(report, doctor, args.batch)
    shutil.rmtree(workdir, ignore_errors=True)


def batch_figures(report, actor, count: int) -> None:
    import resource

    from reports.services import report_batch_print

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    batch = report_batch_print(reports=[report] * count, actor=actor, label="bench")
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"batch of {count}: {elapsed:.1f} s ({elapsed / count:.2f} s per report), {batch.pages} "
        f"pages, {len(batch.content) / 1024 / 1024:.1f} MB; peak RSS {peak / 1024:.0f} MB "
        f"(before the batch {before / 1024:.0f} MB)"
    )


def reviewed_record(photos: Path, *, technician, doctor):
    """A signed screening with the two largest photos in `photos`, full-size heatmaps and
    findings from a demonstration package: the heaviest report the engine produces."""
    import datetime as dt
    from decimal import Decimal

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from ai_engine.models import Analysis, Finding, ModelPackage
    from patients.services import patient_create
    from screening.models import RecordStatus, ScreeningRecord
    from screening.services import image_upload, record_create, review_save_draft, review_sign

    tech = technician

    patient = patient_create(
        actor=tech,
        name="基准测试",
        sex="female",
        date_of_birth=dt.date(1962, 3, 4),
        phone="13800138000",
    )
    record = record_create(
        actor=tech,
        patient=patient,
        va_od=Decimal("0.5"),
        va_os=Decimal("0.8"),
        iop_od=Decimal("23"),
        iop_os=Decimal("17"),
    )
    package, _ = ModelPackage.objects.get_or_create(
        name="odir-bench",
        version="1.0.0",
        defaults={
            "task": "multilabel",
            "architecture": "resnet50",
            "path": "-",
            "weights_sha256": "0" * 64,
            "card": {"evidence": "Macro-F1 0.74 on held-out photos"},
            "demonstration": True,
        },
    )
    files = sorted(photos.glob("*.jpg"), key=lambda f: (-_pixels(f), f.name))[:2]  # the largest
    if len(files) < 2:
        raise SystemExit(f"need two JPEG photos in {photos}")
    sizes = []
    for eye, path in zip(("OD", "OS"), files, strict=True):
        upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")
        image = image_upload(actor=tech, record=record, eye=eye, uploaded_file=upload)
        sizes.append((image.width, image.height))
        analysis = Analysis.objects.create(
            image=image,
            package=package,
            model_name=package.name,
            model_version=package.version,
            weights_sha256=package.weights_sha256,
            status="done",
            quality_score=0.9,
            quality_gradable=True,
        )
        with Image.open(path) as photo:  # a full-size overlay, the worst case the engine may write
            overlay = Image.blend(
                photo.convert("RGB"), Image.new("RGB", photo.size, (255, 60, 0)), 0.35
            )
            buffer = io.BytesIO()
            overlay.save(buffer, "PNG")
        heatmap = default_storage.save(
            f"heatmaps/bench/{analysis.pk}.png", ContentFile(buffer.getvalue())
        )
        for code, zh, en, probability in (
            ("D", "糖尿病视网膜病变", "Diabetic retinopathy", 0.81),
            ("G", "青光眼", "Glaucoma", 0.34),
            ("N", "正常", "Normal", 0.1),
        ):
            Finding.objects.create(
                analysis=analysis,
                label_code=code,
                label_zh=zh,
                label_en=en,
                probability=probability,
                threshold=0.5,
                positive=probability >= 0.5,
                heatmap=heatmap if probability >= 0.5 else "",
            )
    ScreeningRecord.objects.filter(pk=record.pk).update(status=RecordStatus.ANALYSED)
    review = review_save_draft(
        doctor=doctor,
        record=record,
        conclusion_codes=["dr_moderate"],
        recommendation="refer",
        follow_up_months=3,
    )
    review_sign(doctor=doctor, review=review)
    return record, sizes


def _pixels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height


if __name__ == "__main__":
    main()

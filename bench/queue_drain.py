"""A burst of uploads drains through the real queue: 200 photos, one `ai` cluster, PostgreSQL.

    .venv/bin/python bench/queue_drain.py [--photos 200] [--workers 1] [--package PATH]

Creates a scratch database (ophai_bench_drain), uploads the photos through the same service the
web UI and API use (each upload queues its analysis on the ORM broker after commit), starts a
real `Q_CLUSTER_NAME=ai qcluster`, and prints the time until the queue is empty, photos per
second, and the per-photo analysis time the workers recorded. Photos come from
../shared/data/fundus. Without --package it uses the bundled demonstration package, or an
untrained timing-only package when none is bundled (said so in the output).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = (REPO / ".." / "shared" / "data" / "fundus").resolve()
DB_NAME = "ophai_bench_drain"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--package", type=Path, default=None)
    args = parser.parse_args()

    media = Path(tempfile.mkdtemp(prefix="ophai-drain-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "MEDIA_ROOT": str(media),
        "AI_DEVICE": os.environ.get("AI_DEVICE", "cpu"),
        "AI_WORKERS": str(args.workers),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        ["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    package, note = _package(args.package, media)
    from ai_engine.services import package_register

    package_register(path=package, activate=True)
    photos = sorted(DATA.glob("images/*/*/*.jpg"))[: args.photos]
    if len(photos) < args.photos:
        raise SystemExit(f"only {len(photos)} photos under {DATA}")

    from django.contrib.auth import get_user_model
    from django.core.files import File

    from core.roles import role_assign
    from patients.services import patient_create
    from screening.services import image_upload, record_create

    technician = get_user_model().objects.create_user("bench-tech", password="x")  # noqa: S106
    role_assign(user=technician, role="technician")
    import datetime as dt

    began = time.perf_counter()
    for index in range(0, len(photos), 2):
        patient = patient_create(
            actor=technician, name=f"压测{index}", sex="female", date_of_birth=dt.date(1960, 1, 1)
        )
        record = record_create(actor=technician, patient=patient, iop_od="15", iop_os="16")
        for eye, path in zip(("OD", "OS"), photos[index : index + 2], strict=False):
            with path.open("rb") as handle:
                image_upload(
                    actor=technician,
                    record=record,
                    eye=eye,
                    uploaded_file=File(handle, name=path.name),
                )
    upload_seconds = time.perf_counter() - began

    from django.db import connection
    from django_q.models import OrmQ

    from ai_engine.models import Analysis, AnalysisStatus

    connection.close()
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=REPO, env={**env, "Q_CLUSTER_NAME": "ai"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    began = time.perf_counter()
    try:
        while True:
            finished = Analysis.objects.filter(
                status__in=(AnalysisStatus.DONE, AnalysisStatus.UNGRADABLE, AnalysisStatus.FAILED)
            ).count()
            if finished >= len(photos):
                break
            if time.perf_counter() - began > 1800:
                raise SystemExit(f"gave up after 30 min with {finished}/{len(photos)} analysed")
            time.sleep(1)
        drain_seconds = time.perf_counter() - began
    finally:
        os.killpg(cluster.pid, 9)
    totals = [a.timings.get("total", 0.0) for a in Analysis.objects.exclude(timings={})]
    statuses = {s: Analysis.objects.filter(status=s).count() for s in AnalysisStatus.values}
    print(f"package: {package.name} {note}")
    print(
        f"photos uploaded: {len(photos)} in {upload_seconds:.1f} s ({len(photos) / upload_seconds:.1f}/s through image_upload)"
    )
    print(
        f"queue drained by 1 ai cluster × {args.workers} worker(s): {drain_seconds:.1f} s → {len(photos) / drain_seconds:.2f} photos/s"
    )
    print(
        f"per-photo analysis (worker-recorded total): median {statistics.median(totals):.3f} s, p95 {sorted(totals)[int(0.95 * (len(totals) - 1))]:.3f} s"
    )
    print(f"analyses by status: {statuses}; broker rows left: {OrmQ.objects.count()}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _package(path: Path | None, scratch: Path) -> tuple[Path, str]:
    if path is not None:
        return path, ""
    bundled = sorted((REPO / "ai_engine" / "packages").glob("*/model.json"))
    if bundled:
        return bundled[0].parent, "(bundled demonstration package)"
    import timm

    from ai_engine.inference.package import write_package

    sys.path.insert(0, str(REPO))
    from tests.ai_engine.inference.conftest import card_dict

    card = card_dict(
        name="timing-only",
        version="0",
        architecture="resnet18",
        input_size=224,
        evidence="untrained: timing only",
    )
    folder = scratch / "timing-only"
    write_package(folder, timm.create_model("resnet18", num_classes=8), card)
    return folder, "(UNTRAINED, timing only)"


if __name__ == "__main__":
    main()

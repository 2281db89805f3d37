"""Demo patients with screenings (and photos when a folder of them is available)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_source
from patients.models import Patient
from patients.services import patient_create
from screening.services import image_upload, record_create

DEMO_MARK = "[demo]"
DEMO_PATIENTS = (
    # name, sex, date of birth, phone, VA OD/OS, IOP OD/OS, notes
    (
        "张伟",
        "male",
        dt.date(1961, 3, 14),
        "13812348000",
        ("0.6", "0.8"),
        ("17.0", "18.5"),
        "2型糖尿病 12 年",
    ),
    (
        "王芳",
        "female",
        dt.date(1975, 9, 2),
        "13987654321",
        ("1.0", "1.0"),
        ("23.5", "22.0"),
        "高眼压随访",
    ),
    (
        "李娜",
        "female",
        dt.date(1958, 12, 30),
        "13700001111",
        ("0.3", "0.4"),
        ("15.0", "14.0"),
        "视物模糊半年",
    ),
)
DEFAULT_IMAGE_DIR = settings.BASE_DIR.parent / "shared" / "data" / "reference"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def eye_from_name(name: str, fallback: str) -> str:
    """Guess the eye from the words of names like odir_11_right.jpg or 23_OS.png (whole words:
    "odir" is no right eye)."""
    words = set(re.split(r"[^a-z0-9]+", Path(name).stem.lower()))
    if words & {"right", "od"}:
        return "OD"
    if words & {"left", "os"}:
        return "OS"
    return fallback


class Command(BaseCommand):
    help = "Create a few demo patients and screenings (idempotent). Photos from --images DIR when given."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--images",
            type=Path,
            default=None,
            help=f"folder of fundus photos to attach (default: {DEFAULT_IMAGE_DIR} when it exists)",
        )
        parser.add_argument(
            "--operator", default="tech", help="username of the technician recorded as operator"
        )

    def handle(self, *args, images: Path | None, operator: str, **options) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError(
                "seed_demo refuses to write demo patients into a production database."
            )
        try:
            technician = get_user_model().objects.get(username=operator)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(
                f"No user {operator!r}: run `manage.py bootstrap_users` first."
            ) from exc
        image_dir = (
            images
            if images is not None
            else (DEFAULT_IMAGE_DIR if DEFAULT_IMAGE_DIR.is_dir() else None)
        )
        if images is not None and not images.is_dir():
            raise CommandError(f"--images {images} is not a folder.")
        photos = (
            sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if image_dir
            else []
        )
        # Right eye first within a patient's pair: odir_11_right before odir_11_left.
        photos.sort(key=lambda p: (p.name.split("_")[:2], eye_from_name(p.name, "OD") != "OD"))

        created = 0
        with audit_source("command"):
            for index, (name, sex, dob, phone, va, iop, notes) in enumerate(DEMO_PATIENTS):
                if Patient.objects.filter(
                    name=name, date_of_birth=dob, notes__startswith=DEMO_MARK
                ).exists():
                    continue
                patient = patient_create(
                    actor=technician,
                    name=name,
                    sex=sex,
                    date_of_birth=dob,
                    phone=phone,
                    notes=f"{DEMO_MARK} {notes}",
                )
                record = record_create(
                    actor=technician,
                    patient=patient,
                    va_od=Decimal(va[0]),
                    va_os=Decimal(va[1]),
                    iop_od=Decimal(iop[0]),
                    iop_os=Decimal(iop[1]),
                    notes=notes,
                )
                for position, photo in enumerate(photos[index * 2 : index * 2 + 2]):
                    self._attach(
                        technician,
                        record,
                        eye_from_name(photo.name, "OD" if position == 0 else "OS"),
                        photo,
                    )
                created += 1
        self.stdout.write(
            f"Demo data: {created} new patient(s) created"
            + (
                f", photos from {image_dir}"
                if photos
                else ", no photos (pass --images DIR to add some)"
            )
            + "."
        )

    def _attach(self, technician, record, eye: str, photo: Path) -> None:
        with photo.open("rb") as handle:
            try:
                image_upload(
                    actor=technician,
                    record=record,
                    eye=eye,
                    uploaded_file=File(handle, name=photo.name),
                )
            except ValidationError as exc:
                self.stderr.write(f"Skipped {photo.name}: {' '.join(exc.messages)}")

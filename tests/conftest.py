"""Shared fixtures: users per role, patients, records and small real photos."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()
REQUIRE_SERVICES = os.environ.get("OPHAI_REQUIRE_SERVICES") == "1"


def fundus_like_jpeg(size: int = 320, *, seed: int = 0, fmt: str = "JPEG") -> bytes:
    """A small synthetic fundus-like photo: a reddish disc on black with a bright optic disc."""
    image = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    margin = size // 16
    draw.ellipse((margin, margin, size - margin, size - margin), fill=(170 + seed % 40, 70, 30))
    disc = size // 10
    centre = (size * 2 // 3, size // 2)
    draw.ellipse(
        (centre[0] - disc, centre[1] - disc, centre[0] + disc, centre[1] + disc),
        fill=(250, 220, 150),
    )
    draw.line(
        (size // 6, size // 2 + seed % 7, size * 5 // 6, size // 3), fill=(120, 30, 20), width=3
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def photo_file():
    """A factory of valid upload files: photo_file(name="od.jpg", seed=1)."""

    def make(name: str = "fundus.jpg", *, seed: int = 0, size: int = 320) -> SimpleUploadedFile:
        return SimpleUploadedFile(
            name, fundus_like_jpeg(size, seed=seed), content_type="image/jpeg"
        )

    return make


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not available")
    return SHARED_DATA


# Factories are imported inside the fixtures: the Django-free inference tests share this
# conftest and must collect without Django settings (`pytest -p no:django tests/ai_engine/inference`).
def make_user(role: str, username: str):
    from tests.factories import UserFactory

    return UserFactory(role=role, username=username)


@pytest.fixture
def admin_user(db):
    return make_user("administrator", "admin1")


@pytest.fixture
def doctor(db):
    return make_user("doctor", "doctor1")


@pytest.fixture
def technician(db):
    return make_user("technician", "tech1")


@pytest.fixture
def patient_user(db):
    return make_user("patient", "patient1")


@pytest.fixture
def patient(db, technician):
    from tests.factories import PatientFactory

    return PatientFactory(created_by=technician)


@pytest.fixture
def record(db, patient, technician):
    from tests.factories import ScreeningRecordFactory

    return ScreeningRecordFactory(patient=patient, operator=technician)


@pytest.fixture(autouse=True)
def _english_messages_and_own_media(request, tmp_path):
    if not request.config.pluginmanager.hasplugin("django"):
        return  # the Django-free inference tests, run with -p no:django
    settings = request.getfixturevalue("settings")
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def transactional_roles(transactional_db):
    """Role groups for transactional tests: their flush empties the tables the data migration filled.

    (serialized_rollback is avoided: after another transactional test's flush, post_migrate has
    already recreated content types, and reloading the serialized ones collides.)
    """
    from django.apps import apps

    from core.roles import sync_role_groups

    sync_role_groups(apps)

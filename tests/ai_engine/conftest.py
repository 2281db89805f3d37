"""Fixtures for the Django side of the engine: a tiny registered package and real photos.

Django modules are imported inside the fixtures, so the Django-free inference tests below
this folder still collect with `-p no:django`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ai_engine.inference.conftest import card_dict, tiny_model


@pytest.fixture
def package_folder(tmp_path_factory) -> Path:
    from ai_engine.inference.package import write_package

    folder = tmp_path_factory.mktemp("packages") / "tiny-odir"
    card = card_dict(name="tiny-odir", version="0.1", evidence="untrained test model")
    write_package(folder, tiny_model(card), card)
    return folder


@pytest.fixture
def active_package(db, package_folder):
    from ai_engine.services import package_register

    return package_register(path=package_folder, activate=True)


@pytest.fixture
def upload_photo(technician):
    from django.core.files import File

    from screening.services import image_upload

    def upload(record, eye: str, path: Path):
        with path.open("rb") as handle:
            return image_upload(
                actor=technician, record=record, eye=eye, uploaded_file=File(handle, name=path.name)
            )

    return upload

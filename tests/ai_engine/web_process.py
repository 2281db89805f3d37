"""A web process in miniature: which heavy inference libraries does serving pages load?

Run by test_web_imports.py in a fresh interpreter (the test process has torch loaded by other
tests). Imports clinic.urls and the web-side modules of core, clinic and every app, then serves
representative pages and API calls through django.test.Client against an in-memory SQLite
database, and prints JSON: the libraries loaded and, for each, the import chain that first
asked for it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "timm", "pytorch_grad_cam")
APPS = ("core", "clinic", "patients", "screening", "ai_engine", "reports")
WEB_MODULES = ("urls", "api_urls", "views", "api", "admin", "selectors", "services", "tasks")
first_import: dict[str, list[str]] = {}


class FirstImportRecorder:
    """A meta-path finder that finds nothing; it notes the stack that first asks for HEAVY."""

    def find_spec(self, name: str, path=None, target=None):
        if name in HEAVY and name not in first_import:
            stack = traceback.extract_stack()[:-1]
            first_import[name] = [
                f"{Path(frame.filename).relative_to(REPO_ROOT)}:{frame.lineno} {frame.line}"
                for frame in stack
                if frame.filename.startswith(str(REPO_ROOT)) and "/.venv/" not in frame.filename
            ]
        return None


def import_web_modules() -> None:
    from django.urls import URLResolver, get_resolver

    def walk(patterns) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)

    walk(get_resolver().url_patterns)  # loads every included urls module and its views
    for app in APPS:
        for name in WEB_MODULES:
            try:
                importlib.import_module(f"{app}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app}.{name}":
                    raise


def serve_pages() -> None:
    from django.conf import settings
    from django.contrib import admin
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.urls import reverse

    from reports.services import report_generate
    from screening.services import review_save_draft, review_sign
    from tests.conftest import fundus_like_jpeg, make_user
    from tests.factories import (
        ModelPackageFactory,
        PatientFactory,
        ScreeningRecordFactory,
        UserFactory,
    )
    from tests.web.conftest import CARD, make_analysed

    settings.FUNDUS_ANALYSIS_TASK = settings.REVIEW_SIGNED_TASK = ""
    settings.LLM_BASE_URL = settings.LLM_MODEL = settings.LLM_API_KEY = ""
    technician = make_user("technician", "tech1")
    doctor = make_user("doctor", "doctor1")
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)

    def photo(name: str = "fundus.jpg", *, seed: int = 0) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, fundus_like_jpeg(320, seed=seed), "image/jpeg")

    record = ScreeningRecordFactory(patient=PatientFactory(created_by=technician))
    make_analysed(record, technician, photo, ModelPackageFactory(card=CARD))
    review = review_save_draft(
        doctor=doctor, record=record, conclusion_codes=["dr_moderate"], recommendation="refer"
    )
    review_sign(doctor=doctor, review=review)
    report = report_generate(record=record, actor=doctor)

    client = Client(raise_request_exception=True)
    client.force_login(doctor)
    for url in (
        reverse("dashboard"),
        reverse("pages:screening-detail", args=[record.pk]),
        reverse("pages:patient-detail", args=[record.patient.patient_id]),
        reverse("ai_engine:record-status", args=[record.pk]),
        reverse("api-v1:worklist"),
        reverse("api-v1:record-ai-result", args=[record.pk]),
        reverse("api-v1:record-analyses", args=[record.pk]),
        reverse("reports:detail", args=[report.pk]),
        reverse("reports:report-pdf", args=[report.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    client.force_login(superuser)  # every admin page, axes' too
    for model in admin.site._registry:
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url


def main() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    sys.meta_path.insert(0, FirstImportRecorder())
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinic.settings_test"
    os.environ["DATABASE_URL"] = ""  # SQLite: its test database lives in this process's memory
    import django
    from django.db import connection
    from django.test.utils import setup_test_environment

    django.setup()
    import_web_modules()
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    serve_pages()
    loaded = [name for name in HEAVY if name in sys.modules]
    print(json.dumps({"loaded": loaded, "first_import": first_import}))


if __name__ == "__main__":
    main()

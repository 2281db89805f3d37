from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

DEFAULT_CLINIC_NAME = _("OphAI Eye Screening Clinic")


def clinic_name() -> str:
    return settings.CLINIC_NAME or str(DEFAULT_CLINIC_NAME)

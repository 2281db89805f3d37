"""The photo viewer's data (templates/includes/photo_viewer.html, static/clinic/viewer.js):
each photo's URL, caption and heatmaps, served by the audited private-media views."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.urls import reverse

from ai_engine.models import Finding
from clinic.templatetags.clinic_ui import finding_label
from screening.models import FundusImage


def viewer_photo(image: FundusImage, caption: str, heatmaps: Iterable[Finding]) -> dict:
    return {
        "id": image.pk,
        "src": reverse("screening:fundus-image-file", args=[image.pk]),
        "caption": caption,
        "heatmaps": [
            {
                "url": reverse("ai_engine:heatmap-file", args=[finding.pk]),
                "label": f"{finding_label(finding)} ({finding.probability:.2f})",
            }
            for finding in heatmaps
        ],
    }


def viewer_json(photos: list[dict]) -> str:
    return json.dumps(photos, ensure_ascii=False)

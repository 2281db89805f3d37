"""The screening page's photo viewer: every photo of the visit, in page order, with its
heatmaps; each photo opens the viewer at its own place (static/clinic/viewer.js)."""

from __future__ import annotations

import html as html_lib
import json
import re

from django.urls import reverse

from tests.ai_results import make_retaken, multiclass_package


def test_the_viewer_lists_the_visits_photos_in_page_order(
    client, doctor, record, technician, photo_file
):
    record = make_retaken(record, technician, photo_file, multiclass_package())
    client.force_login(doctor)

    html = client.get(reverse("pages:screening-detail", args=[record.pk])).content.decode()

    viewer = re.search(r'<div class="viewer"[^>]*id="photo-viewer"', html).group(0)
    photos = json.loads(html_lib.unescape(re.search(r'data-photos="([^"]*)"', viewer).group(1)))
    od = record.images.get(eye="OD")
    expected = [od, record.good_os, record.noise_os]
    assert [photo["id"] for photo in photos] == [image.pk for image in expected]
    assert [photo["caption"] for photo in photos] == [
        f"Right eye (OD) · Photo {od.pk}",
        f"Left eye (OS) · Photo {record.good_os.pk}",
        f"Left eye (OS) · Photo {record.noise_os.pk}",
    ]
    assert photos[0]["src"] == reverse("screening:fundus-image-file", args=[od.pk])
    assert [len(photo["heatmaps"]) for photo in photos] == [1, 1, 0]
    opens = re.findall(r'id="frame-(\d+)" data-viewer-open="(\d+)"', html)
    assert opens == [(str(image.pk), str(index)) for index, image in enumerate(expected)]
    assert 'src="/static/clinic/viewer.js"' in html

"""Compare visits and the photo viewer in Chromium: one patient's two visits side by side, the
wheel zoom and the drag synchronised between the visits, the red-free view, the heatmap legend,
and the screening page's viewer stepped through with the arrow keys and closed with Esc."""

from __future__ import annotations

import datetime as dt

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from ai_engine.models import ModelPackage
from screening.models import ScreeningRecord
from tests.conftest import fundus_like_jpeg
from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory
from tests.web.browser import BROWSER_MARKS, shot
from tests.web.conftest import CARD, make_analysed

pytestmark = BROWSER_MARKS

LAYER = "#{} .viewer-layer"
CENTRE_PIXEL = """(selector) => {
  const img = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(img.naturalWidth / 3, img.naturalHeight / 2, 1, 1).data);
}"""


PINCH = """(stage) => {
  const box = stage.getBoundingClientRect(), y = box.top + box.height / 2, x = box.left + box.width / 2;
  const fire = (type, id, dx) => stage.dispatchEvent(new PointerEvent(type, {
    pointerId: id, pointerType: "touch", clientX: x + dx, clientY: y, bubbles: true, isPrimary: id === 1,
  }));
  fire("pointerdown", 1, -40); fire("pointerdown", 2, 40);
  fire("pointermove", 2, 120);  // the fingers 80 px, then 160 px apart
  fire("pointerup", 1, -40); fire("pointerup", 2, 120);
}"""


def _transform(page, viewer: str) -> str:
    return page.locator(LAYER.format(viewer)).evaluate("el => el.style.transform")


def test_a_doctor_compares_two_visits_and_steps_through_the_photos(page_for, live_server):
    technician = UserFactory(role="technician", username="tech-v")
    doctor = UserFactory(role="doctor", username="doctor-v")
    package = ModelPackage.objects.create(
        name="odir-demo",
        version="1.2.0",
        task="multilabel",
        architecture="mobilenetv3_small_100",
        path="/nonexistent",
        weights_sha256="ab" * 32,
        card=CARD,
        demonstration=True,
        is_active=False,
    )
    patient = PatientFactory(name="李桂兰")
    visits = []
    for days_ago in (180, 3):
        record = ScreeningRecordFactory(patient=patient, operator=technician)
        ScreeningRecord.objects.filter(pk=record.pk).update(
            screened_at=timezone.now() - dt.timedelta(days=days_ago)
        )
        visits.append(
            make_analysed(
                record,
                technician,
                lambda name="f.jpg", seed=0: SimpleUploadedFile(
                    name, fundus_like_jpeg(320, seed=seed)
                ),
                package,
            )
        )
    page = page_for(doctor)

    page.goto(f"{live_server.url}/patients/{patient.patient_id}/")
    page.click("text=比较就诊")
    page.wait_for_url(f"**/patients/{patient.patient_id}/compare/")
    assert page.locator("#compare-OD .compare-visit").count() == 2
    assert page.locator("svg.chart .mark").count() == 4

    # The wheel over the earlier visit's right eye zooms the later visit's with it.
    stage = page.locator("#viewer-OD-A .viewer-stage")
    stage.scroll_into_view_if_needed()
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => document.querySelector('#viewer-OD-A').dataset.zoom !== '1.00'")
    zoom = page.locator("#viewer-OD-A").get_attribute("data-zoom")
    assert float(zoom) > 1.5
    assert page.locator("#viewer-OD-B").get_attribute("data-zoom") == zoom
    assert _transform(page, "viewer-OD-B") == _transform(page, "viewer-OD-A")
    assert _transform(page, "viewer-OS-A") == "translate(0px, 0px) scale(1)"
    # A drag on the later visit pans both.
    before = _transform(page, "viewer-OD-A")
    box_b = page.locator("#viewer-OD-B .viewer-stage").bounding_box()
    page.mouse.move(box_b["x"] + 100, box_b["y"] + 100)
    page.mouse.down()
    page.mouse.move(box_b["x"] + 140, box_b["y"] + 120, steps=4)
    page.mouse.up()
    assert _transform(page, "viewer-OD-A") != before
    assert _transform(page, "viewer-OD-A") == _transform(page, "viewer-OD-B")

    # A pinch (two touch pointers moving apart) on the later visit zooms both further.
    page.click("#viewer-OD-A [data-action=reset]")
    assert page.locator("#viewer-OD-B").get_attribute("data-zoom") == "1.00"
    page.locator("#viewer-OD-B .viewer-stage").evaluate(PINCH)
    pinched = page.locator("#viewer-OD-B").get_attribute("data-zoom")
    assert pinched == "2.00"
    assert page.locator("#viewer-OD-A").get_attribute("data-zoom") == pinched

    # Red-free: the green channel as grey, in both visits' photos of the eye.
    original = page.evaluate(CENTRE_PIXEL, "#viewer-OD-A .viewer-photo")
    page.click("#viewer-OD-A [data-view=red-free]")
    page.locator("#viewer-OD-B[data-view-ready=red-free]").wait_for()
    page.locator("#viewer-OD-A[data-view-ready=red-free]").wait_for()
    red, green, blue, _alpha = page.evaluate(CENTRE_PIXEL, "#viewer-OD-A .viewer-photo")
    assert red == green == blue
    assert original[0] > original[1]  # the photo itself is reddish
    assert page.locator("#viewer-OD-B [data-view=red-free]").get_attribute("aria-pressed") == "true"

    # The heatmap shows inside the zoomed layer, with its colour legend.
    page.check("#viewer-OD-A .viewer-heat input[type=checkbox]")
    assert page.locator("#viewer-OD-A .viewer-heatmap").is_visible()
    assert page.locator("#viewer-OD-A .viewer-legend").is_visible()
    shot(page, "30-compare-visits")

    # The screening page: a photo opens the viewer; the arrow keys step, Esc closes.
    later = visits[1]
    page.goto(f"{live_server.url}/screening/{later.pk}/")
    page.click(f"#frame-{later.images.get(eye='OD').pk}")
    viewer = page.locator("#photo-viewer")
    viewer.wait_for()
    assert viewer.get_attribute("data-index") == "0"
    assert "右眼" in page.locator("#photo-viewer .viewer-caption").inner_text()
    page.keyboard.press("ArrowRight")
    assert viewer.get_attribute("data-index") == "1"
    assert "左眼" in page.locator("#photo-viewer .viewer-caption").inner_text()
    page.keyboard.press("ArrowLeft")
    assert viewer.get_attribute("data-index") == "0"
    shot(page, "31-photo-viewer")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('viewer-dialog').open")

"""In Chromium: a doctor reads the shadow model's agreement on the statistics page and an
administrator sees the drift watch flag this week, in Chinese, under the page's CSP."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from ai_engine.models import AnalysisStatus, PackageState
from tests.factories import ScreeningRecordFactory, UserFactory
from tests.learning_clinic import eye_photo, package, photo, read, signed_visit
from tests.web.browser import BROWSER_MARKS, shot

pytestmark = BROWSER_MARKS


def test_shadow_agreement_and_drift_watch_in_the_browser(page_for, live_server):
    doctor = UserFactory(role="doctor", username="doctor-shadow")
    admin = UserFactory(role="administrator", username="admin-drift")
    technician = UserFactory(role="technician", username="tech-drift")
    active = package("1.0", PackageState.ACTIVE)
    shadow = package("2.0", PackageState.SHADOW)
    for od in (True, False):
        record = signed_visit(
            doctor, od=["dr_moderate"] if od else ["normal"], os_=["normal"], technician=technician
        )
        for eye in ("OD", "OS"):
            read(eye_photo(record, eye), active, set())
            read(
                eye_photo(record, eye), shadow, {"D"} if od and eye == "OD" else set(), shadow=True
            )
    now = timezone.now()
    for weeks_ago in (3, 2, 1, 0):
        record = ScreeningRecordFactory(operator=technician)
        for _photo in range(4):
            image = photo(record, "OS", uploaded_at=now - dt.timedelta(weeks=weeks_ago))
            bad = weeks_ago == 0
            read(image, active, set(), status=AnalysisStatus.UNGRADABLE if bad else "done")

    page = page_for(doctor)
    page.goto(f"{live_server.url}/statistics/")
    section = page.locator("#shadow-agreement")
    assert section.locator("h2").inner_text() == "影子模型与已签名审核的对比"
    shadow_row = section.locator('tr.shadow-shadow[data-condition="dr"] td')
    active_row = section.locator('tr.shadow-active[data-condition="dr"] td')
    # Cells: model, cases, both positive, AI only, doctor only, both negative, ...
    assert [shadow_row.nth(i).inner_text() for i in range(1, 6)] == ["4", "1", "0", "0", "3"]
    assert [active_row.nth(i).inner_text() for i in range(1, 6)] == ["4", "0", "0", "1", "3"]
    section.scroll_into_view_if_needed()
    shot(page, "learning-01-shadow-agreement")

    page = page_for(admin)
    page.goto(f"{live_server.url}/operations/")
    assert page.locator("#drift-alert").inner_text() == "1 周超出范围。"
    # This week: the four photos of the new camera and the four of the signed visits.
    assert page.locator("#drift-table tr.flagged td.flag").first.inner_text() == "50% (4/8) ⚠"
    page.locator("#drift-watch").scroll_into_view_if_needed()
    shot(page, "learning-02-drift-watch")

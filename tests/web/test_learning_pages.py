"""The learning loop on the pages: shadow agreement on the statistics page, the drift watch on
the operations page, promotions on the model package's admin page."""

from __future__ import annotations

import datetime as dt
import io

from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from ai_engine.drift import drift_weeks
from ai_engine.models import AnalysisStatus, PackageState
from tests.factories import ScreeningRecordFactory
from tests.learning_clinic import eye_photo, package, photo, read, signed_visit


def test_the_statistics_page_shows_the_shadow_model_beside_the_active_one(client, doctor):
    active = package("1.0", PackageState.ACTIVE)
    shadow = package("2.0", PackageState.SHADOW)
    for od in (True, False, True):
        record = signed_visit(doctor, od=["dr_moderate"] if od else ["normal"], os_=["normal"])
        read(eye_photo(record, "OD"), active, set())  # the active model misses DR
        read(eye_photo(record, "OS"), active, set())
        read(eye_photo(record, "OD"), shadow, {"D"} if od else set(), shadow=True)
        read(eye_photo(record, "OS"), shadow, set(), shadow=True)
    client.force_login(doctor)

    response = client.get(reverse("statistics"))

    html = response.content.decode()
    assert 'id="shadow-agreement"' in html
    chinese = client.get(reverse("statistics"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "影子模型与已签名审核的对比" in chinese
    comparison = response.context["stats"].shadow[0]
    assert comparison.package == shadow
    dr = next(row for row in comparison.rows if row.code == "dr")
    assert dr.active_package == active
    assert (dr.shadow.tp, dr.shadow.fp, dr.shadow.fn, dr.shadow.tn) == (2, 0, 0, 4)
    assert (dr.active.tp, dr.active.fp, dr.active.fn, dr.active.tn) == (0, 0, 2, 4)
    assert '<tr class="shadow-shadow" data-condition="dr">' in html
    assert '100% <span class="muted small">(34%–100%)</span>' in html  # sensitivity, Wilson


def test_the_drift_watch_flags_a_jump_in_the_ungradable_rate(db, client, admin_user, technician):
    active = package("1.0", PackageState.ACTIVE)
    now = timezone.now()
    for weeks_ago in range(8, -1, -1):
        record = ScreeningRecordFactory(operator=technician)
        for index in range(6):
            image = photo(record, "OD", uploaded_at=now - dt.timedelta(weeks=weeks_ago))
            # The new camera of this week: five of six photos ungradable.
            ungradable = weeks_ago == 0 and index < 5
            read(image, active, set(), status=AnalysisStatus.UNGRADABLE if ungradable else "done")

    table = drift_weeks(now=now)

    this_week = table.weeks[-1]
    assert (this_week.ungradable.part, this_week.ungradable.total) == (5, 6)
    assert this_week.ungradable.baseline == 0.0
    assert this_week.ungradable.flagged is True
    assert [w.label for w in table.flagged_weeks] == [this_week.label]
    assert this_week.positive["dr"].flagged is False  # one gradable photo, negative as before
    assert all(not week.flagged for week in table.weeks[:-1])

    client.force_login(admin_user)
    html = client.get("/operations/").content.decode()
    assert 'id="drift-alert"' in html
    assert f'id="drift-{this_week.label}" class="flagged"' in html
    chinese = client.get("/operations/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "漂移监测" in chinese
    assert "1 周超出范围。" in chinese


def test_the_package_admin_page_shows_its_promotions(db, client, admin_user, doctor, settings):
    settings.AI_PROMOTION_MIN_CASES = 1
    active = package("1.0", PackageState.ACTIVE)
    candidate = package("2.0", PackageState.SHADOW)
    record = signed_visit(doctor, od=["dr_moderate"], os_=["normal"])
    read(eye_photo(record, "OD"), active, set())
    read(eye_photo(record, "OS"), active, set())
    read(eye_photo(record, "OD"), candidate, {"D"}, shadow=True)
    read(eye_photo(record, "OS"), candidate, set(), shadow=True)
    call_command("promote_model", "odir", "2.0", "--reason", "验证通过", stdout=io.StringIO())
    client.force_login(admin_user)

    html = client.get(
        reverse("admin:ai_engine_modelpackage_change", args=[candidate.pk])
    ).content.decode()

    assert "验证通过" in html
    assert "candidate odir 2.0  vs  active odir 1.0" in html
    assert "gate: passed" in html


def test_the_package_admin_actions_apply_the_same_rules(db, client, admin_user):
    package("1.0", PackageState.ACTIVE)
    candidate = package("2.0", PackageState.INACTIVE)
    client.force_login(admin_user)
    url = reverse("admin:ai_engine_modelpackage_changelist")

    client.post(url, {"action": "shadow", "_selected_action": [candidate.pk]})
    candidate.refresh_from_db()
    assert candidate.state == "shadow"

    response = client.post(
        url, {"action": "activate", "_selected_action": [candidate.pk]}, follow=True
    )
    candidate.refresh_from_db()
    assert candidate.state == "shadow"
    assert "promote_model odir 2.0" in response.content.decode()

    # A package of a new name is refused too: the message names the audited override
    newcomer = package("1.0", PackageState.INACTIVE, name="new-family")
    response = client.post(
        url, {"action": "activate", "_selected_action": [newcomer.pk]}, follow=True
    )
    newcomer.refresh_from_db()
    assert newcomer.state == "inactive"
    assert "activate_model new-family 1.0 --override --reason" in response.content.decode()

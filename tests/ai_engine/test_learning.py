"""The learning loop: shadow packages, the promotion gate, rollback, and the statistics behind
them, on a small synthetic clinic (analyses and signed reviews written directly)."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from ai_engine.learning import (
    cohen_kappa,
    held_out_cases,
    kappa_interval,
    patient_training_key,
    promotion_gate,
    wilson_interval,
)
from ai_engine.models import Analysis, ModelPackage, PackageState, PromotionRecord, RecordTriage
from ai_engine.services import (
    analyses_ensure,
    analyses_reconcile,
    package_set_state,
    record_finish_analysis,
)
from core.models import AuditEvent
from screening.models import RecordStatus
from tests.factories import ScreeningRecordFactory
from tests.learning_clinic import eye_photo, package, photo, read, signed_visit

DR = ["dr_moderate"]
NORMAL = ["normal"]
# Twelve eyes: the doctor saw DR in the first six.
TRUTH = [True] * 6 + [False] * 6
ACTIVE_CALLS = [True, True, True, True, False, False] + [True] + [False] * 5  # sens 4/6, spec 5/6
BETTER_CALLS = TRUTH
WORSE_CALLS = [True, True, False, False, False, False] + [False] * 6  # sens 2/6, spec 6/6


@pytest.fixture
def gate_settings(settings):
    settings.AI_PROMOTION_MARGIN = 0.02
    settings.AI_PROMOTION_MIN_CASES = 10
    settings.AI_PROMOTION_MAIN_CONDITION = "dr"


def make_clinic(doctor, readers: dict[ModelPackage, list[bool]], *, shadow=()):
    """Six signed screenings (12 eyes, per-eye conclusions) read by each package."""
    records = []
    for index in range(6):
        od, os_ = TRUTH[2 * index], TRUTH[2 * index + 1]
        record = signed_visit(doctor, od=DR if od else NORMAL, os_=DR if os_ else NORMAL)
        for pkg, calls in readers.items():
            for offset, eye in enumerate(("OD", "OS")):
                positive = {"D"} if calls[2 * index + offset] else set()
                read(eye_photo(record, eye), pkg, positive, shadow=pkg in shadow)
        records.append(record)
    return records


def states() -> dict[str, str]:
    return dict(ModelPackage.objects.values_list("version", "state"))


# --- statistics --------------------------------------------------------------------------------
def test_wilson_interval_and_kappa_match_hand_computed_values():
    low, high = wilson_interval(4, 6)
    assert (round(low, 3), round(high, 3)) == (0.300, 0.903)
    assert wilson_interval(0, 0) is None
    assert cohen_kappa(4, 1, 2, 5) == pytest.approx(0.5)
    assert cohen_kappa(0, 0, 0, 12) is None  # one rating throughout: undefined
    interval = kappa_interval(40, 5, 6, 49)
    assert interval == kappa_interval(40, 5, 6, 49)  # a fixed seed: the page does not flicker
    assert interval[0] < cohen_kappa(40, 5, 6, 49) < interval[1]


# --- the promotion gate -----------------------------------------------------------------------
def test_a_worse_candidate_is_refused_the_table_printed_and_nothing_changes(
    db, doctor, gate_settings
):
    active = package("1.0", PackageState.ACTIVE)
    worse = package("3.0", PackageState.SHADOW)
    make_clinic(doctor, {active: ACTIVE_CALLS, worse: WORSE_CALLS}, shadow={worse})
    audits = AuditEvent.objects.count()
    out = io.StringIO()

    with pytest.raises(CommandError, match="was not promoted; nothing changed"):
        call_command("promote_model", "odir", "3.0", "--reason", "retrained", stdout=out)

    printed = out.getvalue()
    assert "candidate odir 3.0  vs  active odir 1.0" in printed
    assert "gate: REFUSED" in printed
    assert "dr: sensitivity 0.333 is worse than 0.667 by more than 0.02" in printed
    assert "dr: kappa 0.333 is not better than 0.500 (main condition)" in printed
    assert states() == {"1.0": "active", "3.0": "shadow"}
    assert PromotionRecord.objects.count() == 0
    assert AuditEvent.objects.count() == audits


def test_a_better_candidate_is_promoted_recorded_and_audited(db, doctor, admin_user, gate_settings):
    active = package("1.0", PackageState.ACTIVE)
    better = package("2.0", PackageState.SHADOW)
    make_clinic(doctor, {active: ACTIVE_CALLS, better: BETTER_CALLS}, shadow={better})
    with pytest.raises(CommandError, match="doctor1: You do not have permission"):
        call_command("promote_model", "odir", "2.0", "--reason", "x", "--by", "doctor1")
    assert states() == {"1.0": "active", "2.0": "shadow"}
    out = io.StringIO()

    call_command(
        "promote_model", "odir", "2.0", "--reason", "clinic data", "--by", admin_user.username,
        stdout=out,
    )  # fmt: skip

    assert "gate: passed" in out.getvalue()
    assert "odir 2.0 is now active; promotion record" in out.getvalue()
    assert states() == {"1.0": "inactive", "2.0": "active"}
    record = PromotionRecord.objects.get()
    assert (record.kind, record.actor, record.reason, record.override) == (
        "promotion",
        admin_user,
        "clinic data",
        False,
    )
    assert record.previous_active == [active.pk]
    assert record.new_active == [better.pk]
    dr_row = next(row for row in record.comparison["rows"] if row["code"] == "dr")
    assert (dr_row["candidate"]["tp"], dr_row["candidate"]["tn"], dr_row["candidate"]["cases"]) == (
        6,
        6,
        12,
    )
    assert (dr_row["active"]["sensitivity"], dr_row["active"]["kappa"]) == (0.6667, 0.5)
    event = AuditEvent.objects.filter(
        object_type="ai_engine.modelpackage", object_id=str(better.pk)
    ).last()
    assert event.changes["promotion"] == [None, record.pk]
    assert event.changes["gate_override"] == [None, False]


def test_an_override_needs_confirm_and_a_reason_and_is_recorded_as_one(db, doctor, gate_settings):
    active = package("1.0", PackageState.ACTIVE)
    worse = package("3.0", PackageState.INACTIVE)
    make_clinic(doctor, {active: ACTIVE_CALLS, worse: WORSE_CALLS})

    with pytest.raises(CommandError, match="add --confirm"):
        call_command("promote_model", "odir", "3.0", "--reason", "urgent", "--override")
    with pytest.raises(CommandError, match="--reason is required"):
        call_command("promote_model", "odir", "3.0", "--override", "--confirm")
    assert states() == {"1.0": "active", "3.0": "inactive"}

    out = io.StringIO()
    call_command(
        "promote_model", "odir", "3.0", "--reason", "vendor recall of 1.0", "--override",
        "--confirm", stdout=out,
    )  # fmt: skip

    assert "gate: REFUSED" in out.getvalue()
    assert "is now active (gate overridden)" in out.getvalue()
    assert states() == {"1.0": "inactive", "3.0": "active"}
    record = PromotionRecord.objects.get()
    assert record.override is True
    assert record.actor is None
    assert record.actor_name.startswith("command (")
    event = AuditEvent.objects.filter(object_id=str(worse.pk), action="update").last()
    assert event.changes["gate_override"] == [None, True]
    assert event.changes["reason"] == [None, "vendor recall of 1.0"]
    assert event.source == "command"


def test_rollback_restores_the_previous_active_set_in_one_command(db, doctor, gate_settings):
    active = package("1.0", PackageState.ACTIVE)
    better = package("2.0", PackageState.SHADOW)
    other = package("1.0", PackageState.ACTIVE, name="glaucoma-net")
    make_clinic(doctor, {active: ACTIVE_CALLS, better: BETTER_CALLS}, shadow={better})
    call_command("promote_model", "odir", "2.0", "--reason", "better", stdout=io.StringIO())
    out = io.StringIO()

    call_command("rollback_model", "odir", "--reason", "doctors report misses", stdout=out)

    assert dict(ModelPackage.objects.values_list("pk", "state")) == {
        active.pk: "active",
        better.pk: "inactive",
        other.pk: "active",
    }
    assert "Rolled back; active now: glaucoma-net 1.0, odir 1.0" in out.getvalue()
    promotion, rollback = PromotionRecord.objects.order_by("pk")
    assert promotion.rolled_back is True
    assert (rollback.kind, rollback.reason) == ("rollback", "doctors report misses")
    assert sorted(rollback.new_active) == sorted([active.pk, other.pk])
    assert AuditEvent.objects.filter(changes__rollback=[promotion.pk, rollback.pk]).count() == 1
    with pytest.raises(CommandError, match="no promotion to roll back"):
        call_command("rollback_model", "odir")


def test_too_few_held_out_cases_are_refused(db, doctor, gate_settings, settings):
    settings.AI_PROMOTION_MIN_CASES = 13
    active = package("1.0", PackageState.ACTIVE)
    better = package("2.0", PackageState.SHADOW)
    make_clinic(doctor, {active: ACTIVE_CALLS, better: BETTER_CALLS}, shadow={better})

    gate = promotion_gate(better)

    assert gate.passed is False
    assert "dr: 12 cases, fewer than the minimum 13" in gate.problems


def test_the_cases_a_candidate_trained_on_are_left_out(db, doctor, gate_settings):
    active = package("1.0", PackageState.ACTIVE)
    records = make_clinic(doctor, {active: ACTIVE_CALLS})
    trained = [patient_training_key(records[0].patient_id)]
    keyed = package("2.0", PackageState.SHADOW, trained_on_keys=trained)
    dated = package("2.1", PackageState.SHADOW, trained_at="2999-01-01")

    cases, rule = held_out_cases(keyed)

    assert rule == "patients not among the card's 1 trained_on_keys"
    assert sorted({case.record_id for case in cases}) == sorted(r.pk for r in records[1:])
    assert len(cases) == 10
    assert held_out_cases(dated)[0] == []
    assert held_out_cases(active)[1].startswith("signed after registration")


def test_a_candidate_without_an_active_counterpart_is_refused(db, doctor, gate_settings):
    lonely = package("1.0", PackageState.SHADOW, name="new-family")
    with pytest.raises(CommandError, match="not promoted"):
        call_command("promote_model", "new-family", "1.0", "--reason", "x", stdout=io.StringIO())
    assert ModelPackage.objects.get(pk=lonely.pk).state == "shadow"


def test_a_second_version_cannot_become_active_beside_the_first_without_the_gate(db):
    package("1.0", PackageState.ACTIVE)
    candidate = package("2.0", PackageState.INACTIVE)

    with pytest.raises(CommandError, match="promote_model odir 2.0"):
        call_command("activate_model", "odir", "2.0", stdout=io.StringIO())
    with pytest.raises(ValidationError):
        package_set_state(package=candidate, state=PackageState.ACTIVE)

    assert states() == {"1.0": "active", "2.0": "inactive"}


def test_a_package_of_a_new_name_needs_an_audited_override_to_become_active(db):
    # Given an active odir package and a package of another name
    package("1.0", PackageState.ACTIVE)
    newcomer = package("1.0", PackageState.SHADOW, name="new-family")
    # When it is switched on without an override (command, service), then with --override alone
    with pytest.raises(CommandError, match="activate_model new-family 1.0 --override --reason"):
        call_command("activate_model", "new-family", "1.0", stdout=io.StringIO())
    with pytest.raises(ValidationError, match="skips the promotion gate"):
        package_set_state(package=newcomer, state=PackageState.ACTIVE)
    with pytest.raises(CommandError, match="give --reason TEXT"):
        call_command("activate_model", "new-family", "1.0", "--override", stdout=io.StringIO())
    # Then nothing changed
    assert ModelPackage.objects.get(pk=newcomer.pk).state == "shadow"
    assert PromotionRecord.objects.count() == 0
    assert AuditEvent.objects.filter(changes__has_key="state").count() == 0

    # When an administrator overrides with a reason
    out = io.StringIO()
    call_command(
        "activate_model", "new-family", "1.0", "--override", "--reason", "vendor audit", stdout=out
    )
    # Then it is active, recorded as an overriding promotion, audited as such
    assert out.getvalue() == "new-family 1.0 is now active.\n"
    record = PromotionRecord.objects.get()
    assert (record.kind, record.package_id, record.override, record.reason) == (
        "promotion",
        newcomer.pk,
        True,
        "vendor audit",
    )
    odir = ModelPackage.objects.get(name="odir").pk
    assert (record.previous_active, sorted(record.new_active)) == (
        [odir],
        sorted([odir, newcomer.pk]),
    )
    event = AuditEvent.objects.get(changes__promotion=[None, record.pk])
    assert event.changes["gate_override"] == [None, True]
    assert event.changes["state"] == ["shadow", "active"]
    # And rollback undoes it; deactivating needs no override
    call_command("rollback_model", "new-family", stdout=io.StringIO())
    assert ModelPackage.objects.get(pk=newcomer.pk).state == "inactive"
    call_command("activate_model", "odir", "1.0", "--off", stdout=io.StringIO())
    assert states() == {"1.0": "inactive"}


def test_register_model_activates_beside_an_active_package_only_with_an_override(db, tmp_path):
    from ai_engine.inference.package import write_package
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    package("1.0", PackageState.ACTIVE)
    card = card_dict(name="other", version="0.1")
    write_package(tmp_path / "other", tiny_model(card), card)
    with pytest.raises(CommandError, match="skips the promotion gate"):
        call_command("register_model", str(tmp_path / "other"), "--activate", stdout=io.StringIO())
    assert ModelPackage.objects.get(name="other").state == "inactive"
    call_command(
        "register_model", str(tmp_path / "other"), "--activate", "--override",
        "--reason", "second opinion model", stdout=io.StringIO(),
    )  # fmt: skip
    assert ModelPackage.objects.get(name="other").state == "active"
    assert PromotionRecord.objects.get().override is True


# --- shadow mode -------------------------------------------------------------------------------
def test_shadow_model_command_switches_a_package_in_and_out_of_shadow_mode(db):
    package("2.0", PackageState.INACTIVE)
    out = io.StringIO()
    call_command("shadow_model", "odir", "2.0", stdout=out)
    assert out.getvalue() == "odir 2.0 is now shadow.\n"
    assert AuditEvent.objects.filter(changes__state=["inactive", "shadow"]).count() == 1
    call_command("shadow_model", "odir", "2.0", "--off", stdout=io.StringIO())
    assert states() == {"2.0": "inactive"}
    with pytest.raises(CommandError, match="not in shadow mode"):
        call_command("shadow_model", "odir", "2.0", "--off")


def test_a_shadow_package_gets_a_shadow_run_of_every_new_photo(db, technician):
    active = package("1.0", PackageState.ACTIVE)
    shadow = package("2.0", PackageState.SHADOW)
    package("0.9", PackageState.INACTIVE)
    record = ScreeningRecordFactory(operator=technician)
    image = photo(record, "OD")

    analyses = analyses_ensure(image=image)

    assert sorted((a.package_id, a.shadow, a.run) for a in analyses) == [
        (active.pk, False, 1),
        (shadow.pk, True, 1),
    ]
    # Promoted later, it gets a visible run beside its shadow one.
    ModelPackage.objects.filter(pk=active.pk).update(state="inactive")
    ModelPackage.objects.filter(pk=shadow.pk).update(state="active")
    analyses_ensure(image=image)
    assert sorted(Analysis.objects.filter(package=shadow).values_list("run", "shadow")) == [
        (1, True),
        (2, False),
    ]


def test_a_pending_shadow_run_does_not_hold_the_record_back(db, technician):
    active = package("1.0", PackageState.ACTIVE)
    shadow = package("2.0", PackageState.SHADOW)
    record = ScreeningRecordFactory(operator=technician, status=RecordStatus.ANALYSING)
    image = photo(record, "OD")
    read(image, active, {"D"})
    Analysis.objects.create(
        image=image, package=shadow, model_name="odir", model_version="2.0", shadow=True
    )  # still queued

    record_finish_analysis(record=record)

    record.refresh_from_db()
    assert record.status == RecordStatus.ANALYSED


def test_the_reconciler_queues_the_missing_shadow_runs_of_open_screenings(
    db, technician, monkeypatch
):
    active = package("1.0", PackageState.ACTIVE)
    package("2.0", PackageState.SHADOW)
    queued: list[int] = []
    monkeypatch.setattr(
        "ai_engine.services.enqueue_on_commit", lambda task, image_id, **kw: queued.append(image_id)
    )
    record = ScreeningRecordFactory(operator=technician, status=RecordStatus.ANALYSED)
    image = photo(record, "OD")
    read(image, active, set())

    counts = analyses_reconcile()

    assert counts["queued_missing"] == 1
    assert queued == [image.pk]


def test_a_batch_of_shadow_runs_alone_leaves_the_record_and_its_triage_alone(
    db, technician, monkeypatch
):
    from ai_engine import runner, tasks
    from ai_engine.services import AnalysisOutcome

    active = package("1.0", PackageState.ACTIVE)
    shadow = package("2.0", PackageState.SHADOW)
    record = ScreeningRecordFactory(operator=technician, status=RecordStatus.ANALYSED)
    image = photo(record, "OD")
    read(image, active, set())
    outcome = AnalysisOutcome(True, 0.9, [], {}, [], {}, {}, "cpu")
    monkeypatch.setattr(
        runner, "run_analyses", lambda claimed: [(a, outcome, None) for a in claimed]
    )

    summary = tasks.analyse_image(image.pk)

    assert summary == f"photo {image.pk}: 1 analyses saved, 0 failed"
    assert Analysis.objects.get(package=shadow).status == "done"
    record.refresh_from_db()
    assert record.status == RecordStatus.ANALYSED
    assert not RecordTriage.objects.filter(record=record).exists()


def test_the_card_carries_the_learning_fields_and_refuses_malformed_ones():
    from ai_engine.inference.card import CardError, parse_card
    from tests.ai_engine.inference.conftest import card_dict

    card = parse_card(
        {**card_dict(), "trained_on_keys": ["k1", "k2"], "trained_at": "2026-11-30",
         "main_condition": "glaucoma"}
    )  # fmt: skip
    assert (card.trained_on_keys, card.trained_at, card.main_condition) == (
        ("k1", "k2"),
        "2026-11-30",
        "glaucoma",
    )
    assert card.to_dict()["trained_on_keys"] == ["k1", "k2"]
    with pytest.raises(CardError, match="trained_on_keys must be a list"):
        parse_card({**card_dict(), "trained_on_keys": "k1"})
    with pytest.raises(CardError, match="trained_at must be an ISO date"):
        parse_card({**card_dict(), "trained_at": "last week"})


def test_an_active_package_cannot_be_promoted_again(db, gate_settings):
    package("1.0", PackageState.ACTIVE)
    with pytest.raises(CommandError, match="odir 1.0 is already active"):
        call_command("promote_model", "odir", "1.0", "--reason", "again")
    assert PromotionRecord.objects.count() == 0

"""Writes of the AI engine: packages, analyses, findings, triage. Every write is transactional."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from ai_engine.inference.diabetic import is_dme_card, is_dr_card
from ai_engine.models import (
    TERMINAL_STATUSES,
    Analysis,
    AnalysisStatus,
    Finding,
    ModelPackage,
    PackageState,
    PromotionRecord,
    RecordTriage,
)
from ai_engine.selectors import (
    active_diagnosis_packages,
    analysis_findings,
    record_diabetic_eyes,
    record_eye_photos,
    record_latest_analyses,
    shadow_packages,
)
from ai_engine.triage import EyeFindings, triage_compute
from core.audit import audit_log
from core.models import AuditEvent
from core.roles import require_permission
from core.tasks import enqueue_on_commit
from screening.models import AcuityKind, FundusImage, ScreeningRecord
from screening.services import record_mark_analysed, record_mark_analysing

if TYPE_CHECKING:
    from ai_engine.learning import GateResult

logger = logging.getLogger(__name__)
ANALYSE_TASK = "ai_engine.tasks.analyse_image"


# --- packages -------------------------------------------------------------------------------
def package_register(
    *,
    path: str | Path,
    actor=None,
    activate: bool = False,
    reason: str = "",
    actor_name: str = "",
) -> ModelPackage:
    """Register the package folder at `path` after checking its card and weights' SHA-256;
    `activate` follows ``package_set_state``'s rules (`reason`: an audited override).

    Registering the same name and version again is harmless; the same version with other
    weights is refused (bump the version instead), so a result always names what made it.
    """
    from ai_engine.inference.card import CardError, load_card
    from ai_engine.inference.package import file_sha256

    if actor is not None:
        require_permission(actor, "ai_engine.add_modelpackage")
    folder = Path(path).resolve()
    try:
        card = load_card(folder)
    except CardError as exc:
        raise ValidationError(str(exc), code="invalid_card") from exc
    weights = folder / card.weights.file
    if not weights.is_file():
        raise ValidationError(
            f"{folder}: weights file {card.weights.file!r} is missing", code="missing_weights"
        )
    actual = file_sha256(weights)
    if actual != card.weights.sha256:
        raise ValidationError(
            f"{weights.name}: SHA-256 {actual} does not match the card's {card.weights.sha256}",
            code="sha256_mismatch",
        )
    with transaction.atomic():
        package, created = ModelPackage.objects.select_for_update().get_or_create(
            name=card.name,
            version=card.version,
            defaults={
                "task": card.task,
                "architecture": card.architecture,
                "path": str(folder),
                "weights_sha256": actual,
                "card": card.to_dict(),
                "demonstration": card.demonstration,
                "registered_by": actor,
            },
        )
        if not created:
            if package.weights_sha256 != actual:
                raise ValidationError(
                    f"{card.name} {card.version} is already registered with other weights "
                    f"({package.weights_sha256[:12]}…); give the new weights a new version.",
                    code="version_conflict",
                )
            package.path, package.card = str(folder), card.to_dict()
            package.save(update_fields=["path", "card"])
        else:
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                obj=package,
                changes={"path": [None, str(folder)]},
            )
    if activate:
        package_set_active(
            package=package, active=True, actor=actor, reason=reason, actor_name=actor_name
        )
    return package


def package_set_active(
    *, package: ModelPackage, active: bool, actor=None, reason: str = "", actor_name: str = ""
) -> ModelPackage:
    """Enable or disable a package; several packages may be active at once."""
    state = PackageState.ACTIVE if active else PackageState.INACTIVE
    return package_set_state(
        package=package, state=state, actor=actor, reason=reason, actor_name=actor_name
    )


def package_set_state(
    *, package: ModelPackage, state: str, actor=None, reason: str = "", actor_name: str = ""
) -> ModelPackage:
    """Make a package active, shadow or inactive (audited).

    A package cannot become active beside an active one of the same name: replacing a model
    goes through ``promote_model``'s gate (``package_promote``). Any other diagnosis package
    becomes active only by an override with a `reason`, recorded as an overriding
    ``PromotionRecord`` (rollback undoes it), unless no diagnosis package is active at all (a
    fresh installation has nothing a new model could be worse than). A quality model gates
    every analysis and reads no condition: it is switched freely and has no shadow mode.
    """
    if actor is not None:
        require_permission(actor, "ai_engine.change_modelpackage")
    state = PackageState(state)
    if package.state == state:
        return package
    overriding = False
    if state == PackageState.ACTIVE and not package.is_quality_model:
        rival = (
            ModelPackage.objects.filter(name=package.name, state=PackageState.ACTIVE)
            .exclude(pk=package.pk)
            .first()
        )
        if rival is not None:
            raise ValidationError(
                _(
                    "%(rival)s is active: a new version replaces it only through "
                    "`manage.py promote_model %(name)s %(version)s`, which compares both on the "
                    "clinic's signed cases."
                )
                % {"rival": rival, "name": package.name, "version": package.version},
                code="promotion_required",
            )
        overriding = bool(reason.strip())
        if not overriding and active_diagnosis_packages():
            raise ValidationError(
                _(
                    "Activating %(package)s skips the promotion gate: it becomes active only "
                    "through `manage.py promote_model`, or by an explicit override with a "
                    "reason (`manage.py activate_model %(name)s %(version)s --override "
                    "--reason TEXT`), audited as such."
                )
                % {"package": package, "name": package.name, "version": package.version},
                code="override_required",
            )
    if state == PackageState.SHADOW and package.is_quality_model:
        raise ValidationError(
            _("A quality model cannot run in shadow mode."), code="quality_shadow"
        )
    with transaction.atomic():
        previous = _active_set()
        before = package.state
        package.state = state
        package.save(update_fields=["state"])
        changes: dict[str, list[Any]] = {"state": [before, state]}
        if overriding:
            record = PromotionRecord.objects.create(
                kind=PromotionRecord.Kind.PROMOTION,
                package=package,
                actor=actor,
                actor_name=_actor_name(actor, actor_name),
                reason=reason.strip(),
                override=True,
                comparison={},
                previous_active=previous,
                new_active=_active_set(),
            )
            changes.update(
                promotion=[None, record.pk],
                gate_override=[None, True],
                reason=[None, record.reason],
            )
        audit_log(actor=actor, action=AuditEvent.Action.UPDATE, obj=package, changes=changes)
    return package


def packages_install(*, packages: list[ModelPackage], actor=None) -> list[ModelPackage]:
    """The first-time installation (``register_model --bundled --activate-if-none`` at
    set-up): activate `packages` together, without the gate, while no diagnosis package is
    active; refused once one is."""
    if actor is not None:
        require_permission(actor, "ai_engine.change_modelpackage")
    with transaction.atomic():
        if active_diagnosis_packages():
            raise ValidationError(
                _("A diagnosis package is already active: this is not a first installation."),
                code="installed",
            )
        names = [p.name for p in packages if not p.is_quality_model]
        if len(names) != len(set(names)):
            raise ValidationError(
                _("Install one version of each package name."), code="duplicate_name"
            )
        for package in packages:
            if package.state == PackageState.ACTIVE:
                continue
            before = package.state
            package.state = PackageState.ACTIVE
            package.save(update_fields=["state"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=package,
                changes={"state": [before, PackageState.ACTIVE], "installation": [None, True]},
            )
    return packages


def _active_set() -> list[int]:
    return sorted(
        ModelPackage.objects.filter(state=PackageState.ACTIVE).values_list("pk", flat=True)
    )


def _actor_name(actor, fallback: str = "") -> str:
    """Who made a change: the user, else what the command knows (the operating-system login)."""
    return actor.get_username() if actor is not None else fallback


def package_promote(
    *,
    package: ModelPackage,
    reason: str,
    actor=None,
    actor_name: str = "",
    override: bool = False,
) -> tuple[PromotionRecord | None, GateResult]:
    """Make `package` active in place of the active package of its name, if the promotion
    gate (``ai_engine.learning.promotion_gate``) lets it through or `override` is given.

    Nothing changes on a refusal (the record is None). Success stores who, why, the
    comparison and the previous active set, and audits it (an override as such).
    """
    from ai_engine.learning import promotion_gate

    if actor is not None:
        require_permission(actor, "ai_engine.change_modelpackage")
    if not reason.strip():
        raise ValidationError(_("Give the reason for this promotion."), code="reason_required")
    if package.is_active:
        raise ValidationError(
            _("%(package)s is already active.") % {"package": package}, code="active"
        )
    if package.is_quality_model:
        raise ValidationError(
            _("Quality models are not promoted through the gate; use activate_model."),
            code="quality_model",
        )
    gate = promotion_gate(package)
    if not gate.passed and not override:
        return None, gate
    with transaction.atomic():
        previous = _active_set()
        replaced = list(
            ModelPackage.objects.select_for_update()
            .filter(name=package.name, state=PackageState.ACTIVE)
            .exclude(pk=package.pk)
        )
        for old in replaced:
            old.state = PackageState.INACTIVE
            old.save(update_fields=["state"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=old,
                changes={"state": [PackageState.ACTIVE, PackageState.INACTIVE]},
            )
        before = package.state
        package.state = PackageState.ACTIVE
        package.save(update_fields=["state"])
        record = PromotionRecord.objects.create(
            kind=PromotionRecord.Kind.PROMOTION,
            package=package,
            actor=actor,
            actor_name=_actor_name(actor, actor_name),
            reason=reason.strip(),
            override=not gate.passed,
            comparison=gate.to_dict(),
            previous_active=previous,
            new_active=_active_set(),
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=package,
            changes={
                "state": [before, PackageState.ACTIVE],
                "promotion": [None, record.pk],
                "gate_override": [None, not gate.passed],
                "reason": [None, record.reason],
            },
        )
    return record, gate


def package_rollback(
    *, reason: str, name: str = "", actor=None, actor_name: str = ""
) -> PromotionRecord:
    """Restore the active set from before the latest promotion (of `name`, if given) that is
    not rolled back yet; recorded and audited like the promotion."""
    if actor is not None:
        require_permission(actor, "ai_engine.change_modelpackage")
    with transaction.atomic():
        promotions = PromotionRecord.objects.select_for_update().filter(
            kind=PromotionRecord.Kind.PROMOTION, rolled_back=False
        )
        if name:
            promotions = promotions.filter(package__name=name)
        promotion = promotions.select_related("package").first()
        if promotion is None:
            raise ValidationError(_("There is no promotion to roll back."), code="nothing")
        current = _active_set()
        wanted = set(promotion.previous_active)
        # Only the packages the promotion touched change: others activated since stay as they are.
        touched = ModelPackage.objects.filter(name=promotion.package.name)
        for package in touched.select_for_update():
            state = PackageState.ACTIVE if package.pk in wanted else PackageState.INACTIVE
            if package.state == state or (
                package.state == PackageState.SHADOW and state == PackageState.INACTIVE
            ):
                continue
            before = package.state
            package.state = state
            package.save(update_fields=["state"])
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=package,
                changes={"state": [before, state], "rollback_of": [None, promotion.pk]},
            )
        promotion.rolled_back = True
        promotion.save(update_fields=["rolled_back"])
        record = PromotionRecord.objects.create(
            kind=PromotionRecord.Kind.ROLLBACK,
            package=promotion.package,
            actor=actor,
            actor_name=_actor_name(actor, actor_name),
            reason=reason.strip() or f"rollback of promotion {promotion.pk}",
            comparison={},
            previous_active=current,
            new_active=_active_set(),
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=promotion.package,
            changes={"rollback": [promotion.pk, record.pk]},
        )
    return record


# --- analyses -------------------------------------------------------------------------------
def _snapshot(package: ModelPackage) -> dict[str, Any]:
    return {
        "model_name": package.name,
        "model_version": package.version,
        "weights_sha256": package.weights_sha256,
        "demonstration": package.demonstration,
    }


def analyses_ensure(*, image: FundusImage) -> list[Analysis]:
    """The analyses `image` needs: one per active diagnosis package and one (marked shadow) per
    shadow package, created queued where none exists yet (an active quality model runs inside
    each of them and has no row of its own). A package promoted from shadow gets a visible run
    beside its shadow ones.

    Safe to call from several workers at once: the unique (image, package, run) constraint
    decides, and a loser reads the winner's row.
    """
    analyses = []
    wanted = [(p, False) for p in active_diagnosis_packages()]
    wanted += [(p, True) for p in shadow_packages()]
    for package, shadow in wanted:
        runs = Analysis.objects.filter(image=image, package=package)
        latest = runs.filter(shadow=shadow).order_by("-run").first()
        if latest is None:
            run = (runs.aggregate(Max("run"))["run__max"] or 0) + 1
            try:
                with transaction.atomic():
                    latest = Analysis.objects.create(
                        image=image, package=package, run=run, shadow=shadow, **_snapshot(package)
                    )
            except IntegrityError:
                latest = Analysis.objects.get(image=image, package=package, run=run)
        analyses.append(latest)
    return analyses


def analysis_rerun(*, analysis: Analysis, actor) -> Analysis:
    """Staff ask for a fresh analysis (after a failure, or with a new package version)."""
    require_permission(actor, "ai_engine.rerun_analysis")
    if not analysis.is_terminal:
        raise ValidationError(_("This analysis is still queued or running."), code="not_finished")
    if analysis.image.record.is_locked:
        raise ValidationError(
            _("This screening has a signed review; its analyses are final."), code="locked"
        )
    package = analysis.package
    with transaction.atomic():
        next_run = (
            Analysis.objects.filter(image=analysis.image, package=package).aggregate(Max("run"))[
                "run__max"
            ]
            or 0
        ) + 1
        rerun = Analysis.objects.create(
            image=analysis.image,
            package=package,
            run=next_run,
            shadow=analysis.shadow,
            requested_by=actor,
            **_snapshot(package),
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            obj=rerun,
            patient_ref=analysis.image.record.patient.patient_id,
            changes={"rerun_of": [None, analysis.pk]},
        )
        enqueue_on_commit(ANALYSE_TASK, analysis.image_id, cluster=settings.AI_CLUSTER_NAME)
    return rerun


def analyses_claim(*, image_ids: list[int]) -> list[Analysis]:
    """Mark the queued analyses of these photos running and return them.

    Rows another worker holds are skipped; an analysis that has used up its attempts is
    failed instead of run again (a photo that kills its worker must not loop forever).
    """
    claimed: list[Analysis] = []
    now = timezone.now()
    with transaction.atomic():
        queued = (
            Analysis.objects.select_for_update(skip_locked=True)
            .filter(image_id__in=image_ids, status=AnalysisStatus.QUEUED)
            .select_related("package", "image")
        )
        for analysis in queued:
            if analysis.attempts >= settings.AI_MAX_ATTEMPTS:
                analysis.status = AnalysisStatus.FAILED
                analysis.error = _(
                    "Stopped after %(attempts)d attempts; the worker did not finish."
                ) % {"attempts": analysis.attempts}
                analysis.finished_at = now
                analysis.save(update_fields=["status", "error", "finished_at"])
                continue
            analysis.status = AnalysisStatus.RUNNING
            analysis.attempts += 1
            analysis.started_at = now
            analysis.save(update_fields=["status", "attempts", "started_at"])
            claimed.append(analysis)
    return claimed


@dataclass
class FindingOutcome:
    label_code: str
    label_zh: str
    label_en: str
    probability: float
    threshold: float
    positive: bool
    referable: bool = False
    heatmap_png: bytes | None = None
    cam_method: str = ""
    abnormal_areas: list[str] = field(default_factory=list)


@dataclass
class AnalysisOutcome:
    """What the inference core produced for one (photo, package), in plain values."""

    gradable: bool
    quality_score: float
    quality_reasons: list[str]
    quality_metrics: dict[str, Any]
    findings: list[FindingOutcome]
    result: dict[str, Any]
    timings: dict[str, float]
    device: str


def analysis_save_outcome(*, analysis: Analysis, outcome: AnalysisOutcome) -> bool:
    """Write findings and heatmaps atomically; False if the analysis was no longer ours."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            locked = Analysis.objects.select_for_update().get(pk=analysis.pk)
            if locked.status != AnalysisStatus.RUNNING or locked.attempts != analysis.attempts:
                # The reconciler took it back, or another attempt finished first.
                return False
            for finding in outcome.findings:
                heatmap_name = ""
                if finding.heatmap_png:
                    heatmap_name = default_storage.save(
                        f"heatmaps/{timezone.localdate():%Y/%m}/{analysis.pk}-{finding.label_code}.png",
                        ContentFile(finding.heatmap_png),
                    )
                    stored.append(heatmap_name)
                Finding.objects.create(
                    analysis=locked,
                    label_code=finding.label_code,
                    label_zh=finding.label_zh,
                    label_en=finding.label_en,
                    probability=finding.probability,
                    threshold=finding.threshold,
                    positive=finding.positive,
                    referable=finding.referable,
                    heatmap=heatmap_name,
                    cam_method=finding.cam_method,
                    abnormal_areas=finding.abnormal_areas,
                )
            locked.status = AnalysisStatus.DONE if outcome.gradable else AnalysisStatus.UNGRADABLE
            locked.quality_gradable = outcome.gradable
            locked.quality_score = outcome.quality_score
            locked.quality_reasons = outcome.quality_reasons
            locked.quality_metrics = outcome.quality_metrics
            locked.result = outcome.result
            locked.timings = outcome.timings
            locked.device = outcome.device
            locked.error = ""
            locked.finished_at = timezone.now()
            locked.save()
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    return True


def analysis_mark_failed(*, analysis: Analysis, error: str) -> None:
    Analysis.objects.filter(pk=analysis.pk, status=AnalysisStatus.RUNNING).update(
        status=AnalysisStatus.FAILED, error=error[:4000], finished_at=timezone.now()
    )


def record_start_analysis(*, record: ScreeningRecord) -> None:
    record_mark_analysing(record=record)


def record_finish_analysis(*, record: ScreeningRecord) -> None:
    """Once every photo's analyses are finished: the record waits for review, triage is updated.
    Shadow runs neither hold the record back nor count for its triage."""
    pending = (
        Analysis.objects.visible()
        .filter(image__record=record)
        .exclude(status__in=TERMINAL_STATUSES)
        .exists()
    )
    if not pending:
        record_mark_analysed(record=record)
    triage_update(record=record)


def triage_update(*, record: ScreeningRecord) -> RecordTriage:
    """The record's triage from each eye's photo (``record_eye_photos``): a retaken photo no
    longer counts once its eye has a gradable one, and each reason is given once."""
    eyes: list[EyeFindings] = []
    analyses = record_latest_analyses(record=record)
    diabetic = record_diabetic_eyes(record=record, analyses=analyses)
    for eye, photos in record_eye_photos(record=record, analyses=analyses).items():
        finished = [a for a in photos.analyses if a.is_terminal]
        if not finished:
            continue
        positive: dict[str, dict[str, Any]] = {}
        for analysis in finished:
            card = analysis.package.card or {}
            if is_dr_card(card) or is_dme_card(card):
                continue  # read through the eye's diabetic assessment, by the card's rule
            for finding in analysis_findings(analysis):
                if finding.positive and finding.code not in positive:
                    positive[finding.code] = {
                        "code": finding.code,
                        "label_zh": finding.zh,
                        "label_en": finding.en,
                        "probability": finding.probability,
                        "referable": finding.referable,
                        "normal": finding.normal,
                    }
        eyes.append(
            EyeFindings(
                eye=eye,
                gradable=photos.gradable,
                failed=all(a.status == AnalysisStatus.FAILED for a in finished),
                monochrome=bool(photos.gradable)
                and any("monochrome" in (a.quality_reasons or []) for a in finished),
                positive=list(positive.values()),
                diabetic=diabetic.get(eye),
            )
        )
    # Uncorrected acuity; CF/HM/LP/NLP count as their conventional value and keep their name.
    uncorrected = {
        eye: record.acuity_of(AcuityKind.UNCORRECTED, eye.lower()) for eye in ("OD", "OS")
    }
    result = triage_compute(
        eyes=eyes,
        iop={"OD": record.iop_od, "OS": record.iop_os},
        va={eye: None if value is None else value.decimal for eye, value in uncorrected.items()},
        va_category={
            eye: value.category for eye, value in uncorrected.items() if value and value.category
        },
    )
    triage, _created = RecordTriage.objects.update_or_create(
        record=record,
        defaults={"level": result.level, "priority": result.priority, "reasons": result.reasons},
    )
    return triage


# --- reconciliation -------------------------------------------------------------------------
def analyses_reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Bound every analysis in time: a worker killed mid-task, or a task the broker lost.

    - running longer than the task timeout (+ grace): queued again, or failed once out of attempts;
    - queued for long with nobody working on it: queued again (Redis drops in-flight tasks);
    - recent photos of open screenings without analyses for the active packages: queued.
    """
    now = now or timezone.now()
    counts = {
        "requeued_running": 0,
        "failed_running": 0,
        "requeued_waiting": 0,
        "queued_missing": 0,
    }
    stale_running = now - dt.timedelta(
        seconds=settings.AI_TASK_TIMEOUT + settings.AI_RECONCILE_GRACE
    )
    image_ids: set[int] = set()
    with transaction.atomic():
        for analysis in Analysis.objects.select_for_update(skip_locked=True).filter(
            status=AnalysisStatus.RUNNING, started_at__lt=stale_running
        ):
            if analysis.attempts >= settings.AI_MAX_ATTEMPTS:
                analysis.status = AnalysisStatus.FAILED
                analysis.error = _(
                    "The worker stopped responding %(attempts)d times; re-run it when the cause is fixed."
                ) % {"attempts": analysis.attempts}
                analysis.finished_at = now
                counts["failed_running"] += 1
            else:
                analysis.status = AnalysisStatus.QUEUED
                analysis.queued_at = now
                counts["requeued_running"] += 1
                image_ids.add(analysis.image_id)
            analysis.save(update_fields=["status", "error", "finished_at", "queued_at"])
        stale_queued = now - dt.timedelta(seconds=settings.AI_QUEUED_STALE_SECONDS)
        waiting = Analysis.objects.select_for_update(skip_locked=True).filter(
            status=AnalysisStatus.QUEUED, queued_at__lt=stale_queued
        )
        for analysis in waiting:
            analysis.queued_at = now
            analysis.save(update_fields=["queued_at"])
            if analysis.image_id not in image_ids:
                image_ids.add(analysis.image_id)
                counts["requeued_waiting"] += 1
        recent = now - dt.timedelta(days=settings.AI_RECONCILE_LOOKBACK_DAYS)
        wanted = [(p, False) for p in active_diagnosis_packages()]
        wanted += [(p, True) for p in shadow_packages()]
        for package, shadow in wanted:
            done = Analysis.objects.filter(package=package, shadow=shadow).values("image_id")
            missing = (
                FundusImage.objects.filter(uploaded_at__gte=recent)
                .exclude(record__status__in=("reviewed", "reported"))
                .exclude(pk__in=done)
            )
            for image_id in missing.values_list("id", flat=True):
                image_ids.add(image_id)
                counts["queued_missing"] += 1
        for image_id in sorted(image_ids):
            enqueue_on_commit(ANALYSE_TASK, image_id, cluster=settings.AI_CLUSTER_NAME)
    if any(counts.values()):
        logger.warning("AI reconciler: %s", counts)
    return counts

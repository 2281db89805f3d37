"""The worker side of the engine: loads packages once per process and runs the inference core.

Imported by tasks inside django-q2 worker processes only. Never import it at module level of
code that runs in the cluster's parent or the web server: CUDA cannot be initialised before a
fork, and web hosts do not need torch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage

from ai_engine.inference.card import CardError
from ai_engine.inference.package import ModelPackage as LoadedPackage
from ai_engine.inference.package import PackageError, resolve_device
from ai_engine.inference.predict import ImageAnalysis, analyse_images
from ai_engine.inference.summary import combine_eye_results
from ai_engine.models import Analysis, ModelPackage
from ai_engine.selectors import active_quality_packages
from ai_engine.services import AnalysisOutcome, FindingOutcome

logger = logging.getLogger(__name__)

_loaded: dict[tuple[str, str, str], LoadedPackage] = {}


def worker_device() -> str:
    return str(resolve_device(settings.AI_DEVICE))


def loaded_package(package: ModelPackage) -> LoadedPackage:
    """The package's model, loaded on first use in this process and cached afterwards."""
    device = worker_device()
    key = (package.path, package.weights_sha256, device)
    if key not in _loaded:
        loaded = LoadedPackage.load(package.path, device)
        if loaded.weights_sha256 != package.weights_sha256:
            raise PackageError(
                f"{package.path}: the weights changed on disk since registration "
                f"({loaded.weights_sha256[:12]}… ≠ {package.weights_sha256[:12]}…); register them as a new version"
            )
        _loaded[key] = loaded
        logger.info("Loaded model package %s %s on %s", package.name, package.version, device)
    return _loaded[key]


def run_analyses(
    claimed: list[Analysis],
) -> Iterator[tuple[Analysis, AnalysisOutcome | None, str | None]]:
    """Run each claimed analysis; yields (analysis, outcome, None) or (analysis, None, error).

    Photos of the same package are analysed in one batch (both eyes of a record together).
    Every active quality model (card role "quality") reads each photo after the heuristic gate;
    when one cannot be loaded the analyses fail rather than diagnose ungated photos.
    """
    by_package: dict[int, list[Analysis]] = {}
    for analysis in claimed:
        by_package.setdefault(analysis.package_id, []).append(analysis)
    gates: list[LoadedPackage] = []
    gate_error = None
    for gate in active_quality_packages():
        try:
            gates.append(loaded_package(gate))
        except (CardError, PackageError, OSError) as exc:
            gate_error = f"{gate} (quality model): {exc}"
    for analyses in by_package.values():
        package = analyses[0].package
        try:
            loaded = loaded_package(package)
        except (CardError, PackageError, OSError) as exc:
            for analysis in analyses:
                yield analysis, None, f"{package}: {exc}"
            continue
        if gate_error is not None:
            for analysis in analyses:
                yield analysis, None, gate_error
            continue
        sources = []
        for analysis in analyses:
            with default_storage.open(analysis.image.file.name, "rb") as handle:
                sources.append(handle.read())
        results = analyse_images(
            sources,
            [loaded, *gates],
            device=loaded.device,
            cam=True,
            eyes=[analysis.image.eye for analysis in analyses],
            max_pixels=settings.FUNDUS_UPLOAD_MAX_PIXELS,
        )
        for analysis, image_analysis in zip(analyses, results, strict=True):
            if image_analysis.error is not None:
                yield analysis, None, image_analysis.error
            else:
                yield analysis, outcome_from(image_analysis, device=str(loaded.device)), None


def outcome_from(image_analysis: ImageAnalysis, *, device: str) -> AnalysisOutcome:
    quality = image_analysis.quality
    assert quality is not None  # noqa: S101 - decoded photos always get a quality result
    findings: list[FindingOutcome] = []
    for prediction in image_analysis.predictions:
        for finding in prediction.findings:
            findings.append(
                FindingOutcome(
                    label_code=finding.code,
                    label_zh=finding.zh,
                    label_en=finding.en,
                    probability=float(finding.probability),
                    threshold=float(finding.threshold),
                    positive=finding.positive,
                    referable=finding.referable,
                    heatmap_png=finding.overlay_png,
                    cam_method=finding.cam_method,
                    abnormal_areas=[area.code for area in finding.areas],
                )
            )
    details: dict[str, Any] = image_analysis.to_dict()
    details.pop("source", None)
    details["summary"] = {
        "zh": combine_eye_results([image_analysis], "zh")["combined"],
        "en": combine_eye_results([image_analysis], "en")["combined"],
    }
    return AnalysisOutcome(
        gradable=image_analysis.gradable,
        quality_score=float(quality.score),
        quality_reasons=list(quality.reasons),
        quality_metrics={k: _plain(v) for k, v in quality.metrics.items()},
        findings=findings,
        result=details,
        timings={k: round(float(v), 4) for k, v in image_analysis.timings.items()},
        device=device,
    )


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers, so the JSON fields accept them."""
    return value.item() if hasattr(value, "item") else value

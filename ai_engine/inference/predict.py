"""Forward passes, findings and the per-photo pipeline (decode → crop → quality → models → CAMs).

Positivity (``results.decide``): multilabel and binary findings are positive at probability ≥
threshold; a multiclass model has exactly one positive finding, its argmax (the DR grade),
and the image is referable when that label is. ``referable_probability`` adds up the
probabilities of the referable labels (for multiclass: P(grade ≥ referable grade)).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .areas import LANDMARK_SIZE, extract_areas, locate_landmarks
from .cam import compute_cams, overlay_base, render_overlay
from .decode import ImageDecodeError, load_working_copy
from .diabetic import DrAssessment, dr_assessment
from .package import ModelPackage, resolve_device
from .preprocess import (
    CropBox,
    FundusGeometry,
    as_array,
    detect_fundus,
    model_square,
    normalise,
    render_box,
)
from .quality import check_quality
from .results import Finding, ImageAnalysis, Prediction, decide

STAGES = ("decode", "crop", "quality", "forward", "cam", "png")
# Camera JPEGs are decoded at a DCT scale that keeps at least these sides (long, short): the
# overlays are drawn at most 1200 px wide, model inputs are far smaller, and a fundus of ≥ 700
# px scores the same on every quality metric as the full photo (scripts/check_working_copy.py).
WORKING_MIN_SIDES = (1024, 768)


class Predictor:
    """Batched inference for one loaded package."""

    def __init__(self, package: ModelPackage, device: str | torch.device | None = None) -> None:
        self.package = package
        self.card = package.card
        self.model = package.model
        self.device = package.device if device is None else resolve_device(device)
        if self.device != package.device:
            self.model.to(self.device)
            package.device = self.device
        # The card as the diabetic module reads it (DR cards only; built once, not per photo).
        self._dr_card = (
            {
                "labels": [{"code": label.code} for label in self.card.labels],
                "task": "multiclass",
                "dr_grading": self.card.dr_grading,
                "name": self.card.name,
                "version": self.card.version,
            }
            if self.card.dr_grading and self.card.task == "multiclass"
            else None
        )

    def prepare(
        self, image: Image.Image | np.ndarray, geometry: FundusGeometry | None = None
    ) -> tuple[torch.Tensor, CropBox]:
        if geometry is None:
            geometry = detect_fundus(image)
        square, box = model_square(image, geometry, self.card)
        return normalise(square, self.card.mean, self.card.std), box

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """``N×C×H×W`` normalised inputs → ``N×K`` probabilities (float64)."""
        cuda = self.device.type == "cuda"
        batch = batch.to(self.device, non_blocking=cuda)
        if cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            autocast = torch.autocast("cuda", dtype=dtype)
        else:
            autocast = nullcontext()
        views = [batch]
        if "hflip" in self.card.tta:
            views.append(torch.flip(batch, dims=[3]))
        with torch.inference_mode(), autocast:
            probs = torch.stack([self._activate(self.model(view).float()) for view in views])
        probs = probs.mean(dim=0)
        return probs.cpu().double().numpy()

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        if self.card.task == "multiclass":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def findings_from(self, probs: np.ndarray) -> Prediction:
        card = self.card
        labels = card.labels
        findings = decide(
            card.task,
            [
                Finding(
                    code=label.code,
                    zh=label.zh,
                    en=label.en,
                    probability=float(probs[i]),
                    threshold=label.threshold,
                    positive=False,
                    referable=label.referable,
                    normal=label.normal,
                )
                for i, label in enumerate(labels)
            ],
        )
        referable = any(f.positive and f.referable for f in findings)
        grade = None
        if card.task == "multiclass":
            grade = next(f.code for f in findings if f.positive)
        referable_p = [float(probs[i]) for i, label in enumerate(labels) if label.referable]
        if card.task == "multiclass":
            referable_probability = float(sum(referable_p))
        else:
            referable_probability = max(referable_p, default=0.0)
        dr = self.dr_assessment(probs)
        if dr is not None:  # a DR grade: referable by the card's operating point
            referable, referable_probability = dr.referable, dr.p_referable
        return Prediction(
            model_name=card.name,
            model_version=card.version,
            task=card.task,
            demonstration=card.demonstration,
            evidence=card.evidence,
            findings=findings,
            referable=referable,
            referable_probability=referable_probability,
            grade=grade,
        )

    def predict_tensors(
        self, tensors: Sequence[torch.Tensor], batch_size: int = 16
    ) -> list[Prediction]:
        results: list[Prediction] = []
        for start in range(0, len(tensors), batch_size):
            chunk = torch.stack(list(tensors[start : start + batch_size]))
            began = time.perf_counter()
            probs = self.probabilities(chunk)
            share = (time.perf_counter() - began) / len(chunk)
            for row in probs:
                prediction = self.findings_from(row)
                prediction.timings["forward"] = share
                results.append(prediction)
        return results

    def predict(
        self, images: Sequence[Image.Image | np.ndarray], batch_size: int = 16
    ) -> list[Prediction]:
        """Photos (decoded RGB) → one :class:`Prediction` each, without quality gate or CAMs."""
        tensors = []
        crop_times = []
        for image in images:
            began = time.perf_counter()
            tensors.append(self.prepare(as_array(image))[0])
            crop_times.append(time.perf_counter() - began)
        predictions = self.predict_tensors(tensors, batch_size)
        for prediction, spent in zip(predictions, crop_times, strict=True):
            prediction.timings["crop"] = spent
        return predictions

    def dr_assessment(self, probs: np.ndarray) -> DrAssessment | None:
        """The ICDR grade of a ``dr_grading`` card (``ai_engine.inference.diabetic``)."""
        if self._dr_card is None:
            return None
        return dr_assessment(
            self._dr_card,
            {label.code: float(probs[i]) for i, label in enumerate(self.card.labels)},
            demonstration=self.card.demonstration,
        )

    def cam_targets(self, prediction: Prediction) -> list[int]:
        """Output indices to explain: each positive non-normal finding, else the top one.

        A DR grade explains its argmax grade; an eye referable at the card's operating point
        whose most probable grade is below ``referable_from`` also explains its most probable
        referable grade (what the referral rests on)."""
        findings = prediction.findings
        chosen = [i for i, f in enumerate(findings) if f.positive and not f.normal]
        if not chosen:
            candidates = [i for i, f in enumerate(findings) if not f.normal] or list(
                range(len(findings))
            )
            chosen = [max(candidates, key=lambda i: findings[i].probability)]
        dr = self.dr_assessment(np.array([f.probability for f in findings]))
        if dr is not None and dr.referable and dr.grade < dr.referable_from:
            referable = range(dr.referable_from, len(findings))
            extra = max(referable, key=lambda i: findings[i].probability)
            chosen = sorted({*chosen, extra})
        return chosen

    def explain(self, tensor: torch.Tensor, prediction: Prediction) -> None:
        """Attach heatmaps (model input space) to the findings chosen by :meth:`cam_targets`."""
        targets = self.cam_targets(prediction)
        outputs = [0 if self.card.task == "binary" else i for i in targets]
        maps = compute_cams(self.model, self.card, tensor, outputs)
        by_output = {m.target_index: m for m in maps}
        for finding_index, output in zip(targets, outputs, strict=True):
            finding = prediction.findings[finding_index]
            finding.heatmap = by_output[output].heatmap
            finding.cam_method = by_output[output].method


class QualityModel:
    """A package with role ``quality``: refuses a photo when P(reject) reaches the card's
    ``quality_gate.reject_threshold``. It runs after the heuristic gate, on the photos that gate
    let through, and is never shown as a finding."""

    def __init__(self, package: ModelPackage) -> None:
        card = package.card
        if not card.is_quality_model or card.quality_gate is None:
            raise ValueError(f"{card.name} {card.version} is not a quality model (card role)")
        self.predictor = Predictor(package)
        self.card = card
        codes = [label.code for label in card.labels]
        self.reject_index = (
            0 if card.task == "binary" else codes.index(card.quality_gate["reject_label"])
        )
        self.threshold = float(card.quality_gate["reject_threshold"])

    def verdict(self, photo: np.ndarray, geometry: FundusGeometry) -> dict[str, object]:
        tensor, _ = self.predictor.prepare(photo, geometry)
        probs = self.predictor.probabilities(tensor.unsqueeze(0))[0]
        p_reject = float(probs[self.reject_index])
        return {
            "name": self.card.name,
            "version": self.card.version,
            "probabilities": {
                label.code: round(float(p), 6)
                for label, p in zip(self.card.labels, probs, strict=True)
            },
            "reject_label": self.card.quality_gate["reject_label"],
            "p_reject": round(p_reject, 6),
            "threshold": self.threshold,
            "rejected": p_reject >= self.threshold,
        }


def _source_name(source: str | Path | bytes | Image.Image, index: int) -> str:
    if isinstance(source, str | Path):
        return str(source)
    return f"image[{index}]"


def analyse_images(
    sources: Sequence[str | Path | bytes | Image.Image],
    packages: Sequence[ModelPackage | str | Path],
    device: str | torch.device = "auto",
    cam: bool = True,
    *,
    eyes: Sequence[str | None] | None = None,
    overlay: bool = True,
    batch_size: int = 16,
    max_pixels: int | None = None,
) -> list[ImageAnalysis]:
    """The whole pipeline for a batch of photos; ungradable and monochrome photos get no findings.

    ``packages`` may be loaded packages or package folders (loaded here on ``device``). Those
    whose card has role ``quality`` are quality models: after the heuristic gate each one reads
    the photos it let through, and a photo whose P(reject) reaches the card's threshold is
    ungradable (reason ``quality_model``) and gets no diagnosis; they give no findings.
    Per-photo failures (unreadable files) are reported in ``ImageAnalysis.error``.
    """
    loaded = [p if isinstance(p, ModelPackage) else ModelPackage.load(p, device) for p in packages]
    quality_models = [QualityModel(p) for p in loaded if p.card.is_quality_model]
    predictors = [Predictor(p) for p in loaded if not p.card.is_quality_model]
    eye_list = list(eyes) if eyes is not None else [None] * len(sources)
    if len(eye_list) != len(sources):
        raise ValueError("eyes must have one entry per image")
    analyses: list[ImageAnalysis] = []
    photos: list[np.ndarray | None] = []
    for index, (source, eye) in enumerate(zip(sources, eye_list, strict=True)):
        analysis = ImageAnalysis(source=_source_name(source, index), eye=eye)
        timings = dict.fromkeys(STAGES, 0.0)
        analysis.timings = timings
        began = time.perf_counter()
        try:
            kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
            photo, scale = load_working_copy(source, min_sides=WORKING_MIN_SIDES, **kwargs)
            array = np.asarray(photo)
        except ImageDecodeError as exc:
            analysis.error = str(exc)
            analyses.append(analysis)
            photos.append(None)
            continue
        timings["decode"] = time.perf_counter() - began
        analysis.height, analysis.width = (round(side * scale) for side in array.shape[:2])
        began = time.perf_counter()
        analysis.geometry = detect_fundus(array)
        timings["crop"] = time.perf_counter() - began
        began = time.perf_counter()
        analysis.quality = check_quality(array, analysis.geometry)
        if scale != 1.0 and "diameter_px" in analysis.quality.metrics:  # in the photo's pixels
            analysis.quality.metrics["diameter_px"] = round(
                analysis.quality.metrics["diameter_px"] * scale, 1
            )
        for quality_model in quality_models:
            if not analysis.quality.colour_models_apply:
                break  # refused already (or monochrome: the colour quality model does not apply)
            analysis.quality.refuse_by_model(quality_model.verdict(array, analysis.geometry))
        if analysis.quality.colour_models_apply and cam and predictors:
            box = analysis.geometry.box
            square = render_box(array, box, LANDMARK_SIZE)
            analysis.landmarks = locate_landmarks(square, analysis.geometry, box, eye)
        timings["quality"] = time.perf_counter() - began
        analyses.append(analysis)
        photos.append(array)

    # Every model here was trained on colour photos: a monochrome one is left to the doctor.
    gradable = [i for i, a in enumerate(analyses) if a.colour_models_apply]
    for predictor in predictors:
        tensors, boxes = [], []
        for i in gradable:
            began = time.perf_counter()
            tensor, box = predictor.prepare(photos[i], analyses[i].geometry)
            analyses[i].timings["crop"] += time.perf_counter() - began
            tensors.append(tensor)
            boxes.append(box)
        predictions = predictor.predict_tensors(tensors, batch_size)
        for i, tensor, box, prediction in zip(gradable, tensors, boxes, predictions, strict=True):
            analysis = analyses[i]
            analysis.timings["forward"] += prediction.timings["forward"]
            analysis.predictions.append(prediction)
            if not cam:
                continue
            began = time.perf_counter()
            predictor.explain(tensor, prediction)
            geometry = analysis.geometry
            assert geometry is not None  # noqa: S101 - gradable photos have a geometry
            landmarks = analysis.landmarks
            if landmarks is None or box != geometry.box:
                landmarks = locate_landmarks(
                    render_box(photos[i], box, LANDMARK_SIZE), geometry, box, analysis.eye
                )
            for finding in prediction.findings:
                if finding.heatmap is not None:
                    finding.areas = extract_areas(finding.heatmap, landmarks, geometry, box)
            spent = time.perf_counter() - began
            prediction.timings["cam"] = spent
            analysis.timings["cam"] += spent
            if overlay:
                began = time.perf_counter()
                base = None
                for finding in prediction.findings:
                    if finding.heatmap is not None:
                        if base is None:
                            base = overlay_base(photos[i], geometry)
                        finding.overlay_png = render_overlay(base, finding.heatmap, box, geometry)
                spent = time.perf_counter() - began
                prediction.timings["png"] = spent
                analysis.timings["png"] += spent
    for analysis in analyses:
        analysis.timings["total"] = sum(analysis.timings.get(s, 0.0) for s in STAGES)
    return analyses

"""The inference core's result shapes and labels, in plain Python (no torch, numpy or cv2).

Web processes rebuild and summarise stored results with these (``ai_engine.selectors``,
``summary``) and must not pay for torch; only the modules that run models import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .preprocess import FundusGeometry

# The field radius R is about 3.5 disc diameters on a 45° photo (DD ≈ 0.28 R; see areas).
DD_PER_RADIUS = 0.28
# Anatomical zones of the fundus that heatmap regions are named by: code → (zh, en).
ZONE_NAMES = {
    "optic_disc": ("视盘", "optic disc"),
    "macula": ("黄斑区", "macula"),
    "vascular_arcade": ("血管弓", "vascular arcade"),
    "periphery": ("视网膜周边", "periphery"),
    "posterior_pole": ("后极部", "posterior pole"),
}
# Why the quality gate rejects a photo; ``QualityResult.reasons`` lists them in this order.
REASONS = (
    "no_fundus",
    "small_field_of_view",
    "partial_field",
    "underexposed",
    "overexposed",
    "low_contrast",
    "out_of_focus",
    "too_small",
    "quality_model",  # the learned quality model (a package with role "quality") refused it
    "monochrome",
)
# How a model's probabilities become results (``decision_rule``): the most probable label of a
# multiclass model, or each label against its own threshold.
DECISION_ARGMAX = "argmax"
DECISION_THRESHOLD = "threshold"
# Label codes that mean "nothing found" when a card does not flag its normal label itself.
NORMAL_CODES = frozenset({"n", "normal", "0", "grade0"})
# Reasons that limit a photo without making it ungradable ("gradable with limits"): a doctor
# reads a greyscale or red-free fundus photo, the colour models (trained on colour) do not.
LIMITS = frozenset({"monochrome"})


@dataclass(frozen=True)
class AbnormalArea:
    code: str
    zh: str
    en: str
    peak: float  # highest heat in the region, 0..1
    area_fraction: float  # share of the fundus field covered by the region
    centroid: tuple[float, float]  # in the ORIGINAL photo, as fractions of width and height

    def name(self, language: str) -> str:
        return self.zh if language.startswith("zh") else self.en

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "peak": round(self.peak, 4),
            "area_fraction": round(self.area_fraction, 4),
            "centroid": [round(self.centroid[0], 4), round(self.centroid[1], 4)],
        }


def normalise_eye(eye: str | None) -> str | None:
    if eye is None:
        return None
    eye = eye.strip().lower()
    if eye in ("od", "right", "r", "右", "右眼"):
        return "OD"
    if eye in ("os", "left", "l", "左", "左眼"):
        return "OS"
    return None


def decision_rule(task: str) -> str:
    """The rule that makes a finding positive: a multiclass model's one result is its most
    probable label (thresholds play no part); other models compare each label's probability
    with that label's threshold."""
    return DECISION_ARGMAX if task == "multiclass" else DECISION_THRESHOLD


def is_normal_label(code: str, labels: Sequence[Mapping[str, Any]] = ()) -> bool:
    """Whether `code` means "no disease": the card's ``normal`` flag, else the usual codes."""
    for label in labels:
        if label.get("code") == code and "normal" in label:
            return bool(label["normal"])
    return code.lower() in NORMAL_CODES


def decide(task: str, findings: Sequence[Finding]) -> list[Finding]:
    """`findings` with ``positive`` set by the model's decision rule (``decision_rule``).

    The one place every surface (page, PDF, triage, summary, API) takes a finding's result from,
    so a table can never show a threshold that contradicts it.
    """
    rule = decision_rule(task)
    if rule == DECISION_ARGMAX:
        top = max(range(len(findings)), key=lambda i: findings[i].probability, default=-1)
        return [replace(f, positive=i == top, decision=rule) for i, f in enumerate(findings)]
    return [replace(f, positive=f.probability >= f.threshold, decision=rule) for f in findings]


@dataclass
class QualityResult:
    score: float
    gradable: bool
    reasons: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    # The learned quality model's verdict (name, version, probabilities, p_reject, threshold,
    # rejected), when a quality package ran; None when none is active or the heuristic refused.
    model: dict[str, Any] | None = None

    def refuse_by_model(self, verdict: dict[str, Any]) -> None:
        """Record the quality model's verdict; a rejection makes the photo ungradable."""
        self.model = verdict
        if verdict["rejected"]:
            self.gradable = False
            self.reasons = [r for r in REASONS if r in {*self.reasons, "quality_model"}]
            self.score = min(self.score, 0.4999)

    @property
    def colour_models_apply(self) -> bool:
        """Gradable with no limit: the colour models may read it."""
        return self.gradable and not LIMITS.intersection(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Finding:
    code: str
    zh: str
    en: str
    probability: float
    threshold: float
    positive: bool
    referable: bool
    normal: bool = False
    decision: str = DECISION_THRESHOLD  # see decision_rule
    cam_method: str = ""
    heatmap: np.ndarray | None = field(default=None, repr=False)  # model input space, [0, 1]
    overlay_png: bytes | None = field(default=None, repr=False)
    areas: list[AbnormalArea] = field(default_factory=list)

    def name(self, language: str) -> str:
        return self.zh if language.startswith("zh") else self.en

    @property
    def abnormal(self) -> bool:
        """A positive finding of disease: what reports, triage and summaries call a finding."""
        return self.positive and not self.normal

    @property
    def outcome(self) -> str:
        """ "abnormal", "normal" (the normal label is the result) or "negative"."""
        if not self.positive:
            return "negative"
        return "normal" if self.normal else "abnormal"

    @property
    def shown_threshold(self) -> float | None:
        """The threshold that decided this finding; None when thresholds decide nothing (argmax)."""
        return self.threshold if self.decision == DECISION_THRESHOLD else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "probability": round(self.probability, 6),
            "threshold": self.shown_threshold,
            "decision": self.decision,
            "positive": self.positive,
            "outcome": self.outcome,
            "referable": self.referable,
            "normal": self.normal,
            "cam_method": self.cam_method,
            "has_overlay": self.overlay_png is not None,
            "abnormal_areas": [area.code for area in self.areas],
            "areas": [area.to_dict() for area in self.areas],
        }


@dataclass
class Prediction:
    """One model's output for one photo."""

    model_name: str
    model_version: str
    task: str
    demonstration: bool
    evidence: str
    findings: list[Finding]
    referable: bool
    referable_probability: float
    grade: str | None = None  # multiclass: the argmax label code
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def positive_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.positive]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model_name, "version": self.model_version, "task": self.task},
            "demonstration": self.demonstration,
            "evidence": self.evidence,
            "grade": self.grade,
            "referable": self.referable,
            "referable_probability": round(self.referable_probability, 6),
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class Landmarks:
    """Positions in box unit coordinates; ``disc`` is None when neither found nor implied."""

    centre: tuple[float, float]
    radius: float
    disc: tuple[float, float] | None
    disc_found: bool
    macula: tuple[float, float]

    @property
    def dd(self) -> float:
        return DD_PER_RADIUS * self.radius

    def to_dict(self) -> dict[str, object]:
        def r(p: tuple[float, float] | None) -> list[float] | None:
            return None if p is None else [round(p[0], 4), round(p[1], 4)]

        return {
            "centre": r(self.centre),
            "radius": round(self.radius, 4),
            "disc": r(self.disc),
            "disc_found": self.disc_found,
            "macula": r(self.macula),
        }


@dataclass
class ImageAnalysis:
    """Everything the pipeline learnt about one photo."""

    source: str
    eye: str | None
    width: int = 0
    height: int = 0
    geometry: FundusGeometry | None = None
    quality: QualityResult | None = None
    landmarks: Landmarks | None = None
    predictions: list[Prediction] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def gradable(self) -> bool:
        return self.error is None and self.quality is not None and self.quality.gradable

    @property
    def colour_models_apply(self) -> bool:
        return self.gradable and self.quality is not None and self.quality.colour_models_apply

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "eye": self.eye,
            "width": self.width,
            "height": self.height,
            "error": self.error,
            "gradable": self.gradable,
            "quality": self.quality.to_dict() if self.quality else None,
            "geometry": self.geometry.to_dict() if self.geometry else None,
            "landmarks": self.landmarks.to_dict() if self.landmarks else None,
            "predictions": [p.to_dict() for p in self.predictions],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

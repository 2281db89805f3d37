"""The model card (``model.json``) of a model package: dataclasses and validation.

Conventions:
- ``multilabel``: one logit per label, sigmoid; a finding is positive when its probability
  reaches the label's threshold.
- ``multiclass``: one logit per label, softmax; the positive finding is the argmax (exactly
  one per image). Thresholds are kept for the record but do not decide positivity. For DR
  grading the grade is the argmax label and the image is referable when that label is.
- ``binary``: exactly ONE label (the positive class, e.g. ``abnormal``) and ONE output logit
  with a sigmoid. A model trained with two softmax outputs is declared ``multiclass``.

The card's texts that reports print (``intended_use``, ``evidence``) may come in both report
languages as ``intended_use_zh``/``intended_use_en`` and ``evidence_zh``/``evidence_en``; a card
without them (older packages) prints its single ``intended_use``/``evidence`` in every language.

A label may set ``"normal": true`` (e.g. ODIR ``N``, ICDR grade 0) so that summaries know
that this finding means "no disease"; it defaults to false.

``role`` says what the package is for: ``diagnosis`` (the default; its findings are shown) or
``quality`` (an image-quality model that the pipeline runs after the heuristic gate; it is never
shown as a finding). A quality card names its gate in ``quality_gate``: the label that means
"ungradable" (``reject_label``) and the probability at which a photo is refused
(``reject_threshold``, chosen on validation).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TASKS = ("multilabel", "multiclass", "binary")
PREPROCESSING_STEPS = ("fundus_crop", "pad_square", "resize", "normalize", "clahe", "ben_graham")
CAM_METHODS = ("gradcam", "gradcam++", "layercam")
CAM_RESHAPES = (None, "vit")
WEIGHT_FORMATS = ("safetensors", "pth")
WEIGHT_DTYPES = ("float32", "float16")
DR_SCHEMES = ("icdr_0_4", "icdr_0_3")
TTA_STEPS = ("hflip",)
ROLE_DIAGNOSIS = "diagnosis"
ROLE_QUALITY = "quality"
ROLES = (ROLE_DIAGNOSIS, ROLE_QUALITY)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CODE = re.compile(r"^[A-Za-z0-9_.+-]{1,40}$")
_LAYER_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.(-?\d+|[A-Za-z_][A-Za-z0-9_]*))*$")


class CardError(ValueError):
    """The model card is invalid; the message names the offending field."""


@dataclass(frozen=True)
class LabelSpec:
    code: str
    zh: str
    en: str
    threshold: float = 0.5
    referable: bool = False
    normal: bool = False

    def name(self, language: str) -> str:
        return self.zh if language.startswith("zh") else self.en


@dataclass(frozen=True)
class CamSpec:
    method: str = "gradcam"
    target_layers: tuple[str, ...] = ()
    reshape: str | None = None


@dataclass(frozen=True)
class WeightsSpec:
    file: str
    sha256: str
    format: str = "safetensors"
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str
    architecture: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocessing: tuple[str, ...]
    labels: tuple[LabelSpec, ...]
    cam: CamSpec
    weights: WeightsSpec
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    intended_use: str = ""
    demonstration: bool = True
    evidence: str = ""
    dr_grading: dict[str, Any] | None = None
    intended_use_zh: str = ""
    intended_use_en: str = ""
    evidence_zh: str = ""
    evidence_en: str = ""
    # Test-time augmentation: "hflip" averages the probabilities of the photo and its mirror
    # image (a left eye mirrored looks like a right eye); chosen on validation, like any recipe.
    tta: tuple[str, ...] = ()
    role: str = ROLE_DIAGNOSIS
    quality_gate: dict[str, Any] | None = None
    # The learning loop (README "Learning loop"): the salted patient keys of the clinic's cases the
    # model trained on, when it trained (ISO date), and the condition its promotion must improve.
    trained_on_keys: tuple[str, ...] = ()
    trained_at: str = ""
    main_condition: str = ""
    # A retrained package: its parent, data sources with counts, and the clinic/public mix.
    lineage: dict[str, Any] | None = None

    @property
    def is_quality_model(self) -> bool:
        return self.role == ROLE_QUALITY

    def evidence_text(self, language: str) -> str:
        """The evidence line in `language` ("zh…" or other), else the card's single one."""
        return localised_text(self.to_dict(), "evidence", language)

    def intended_use_text(self, language: str) -> str:
        return localised_text(self.to_dict(), "intended_use", language)

    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["preprocessing"] = list(self.preprocessing)
        data["labels"] = [asdict(label) for label in self.labels]
        data["cam"]["target_layers"] = list(self.cam.target_layers)
        data["tta"] = list(self.tta)
        data["trained_on_keys"] = list(self.trained_on_keys)
        if self.lineage is None:
            del data["lineage"]  # cards of packages trained from scratch stay as they were
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


def localised_text(card: dict[str, Any], key: str, language: str) -> str:
    """`card[key_zh]` or `card[key_en]` for `language`, falling back to `card[key]` (old cards)."""
    suffix = "zh" if language.lower().startswith("zh") else "en"
    return str(card.get(f"{key}_{suffix}") or card.get(key) or "")


def load_card(path: str | Path) -> ModelCard:
    """Read and validate ``model.json`` (a file, or a package folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"model.json: not found at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"model.json: not valid JSON ({exc})") from None
    return parse_card(raw)


def parse_card(raw: Any) -> ModelCard:
    """Validate a decoded ``model.json`` and build the card; raises :class:`CardError`."""
    if not isinstance(raw, dict):
        raise CardError("model.json: the top level must be a JSON object")
    name = _text(raw, "name")
    version = _text(raw, "version")
    task = _choice(raw, "task", TASKS)
    architecture = _text(raw, "architecture")
    arch_kwargs = raw.get("architecture_kwargs", {})
    if not isinstance(arch_kwargs, dict) or not all(isinstance(k, str) for k in arch_kwargs):
        raise CardError("model.json: architecture_kwargs must be an object")
    forbidden = {"num_classes", "pretrained", "pretrained_cfg_overlay", "checkpoint_path"}
    if forbidden & set(arch_kwargs):
        raise CardError(
            f"model.json: architecture_kwargs must not set {sorted(forbidden & set(arch_kwargs))}"
        )
    input_size = raw.get("input_size")
    if not _is_int(input_size) or not 16 <= input_size <= 2048:
        raise CardError("model.json: input_size must be an integer between 16 and 2048")
    mean = _triple(raw, "mean", low=0.0, high=1.0)
    std = _triple(raw, "std", low=1e-6, high=10.0)
    preprocessing = _preprocessing(raw.get("preprocessing"))
    labels = _labels(raw.get("labels"), task)
    cam = _cam(raw.get("cam"))
    weights = _weights(raw.get("weights"))
    validation = raw.get("validation", {})
    if not isinstance(validation, dict):
        raise CardError("model.json: validation must be an object of metrics")
    demonstration = raw.get("demonstration", True)
    if not isinstance(demonstration, bool):
        raise CardError("model.json: demonstration must be true or false")
    dr_grading = raw.get("dr_grading")
    if dr_grading is not None:
        dr_grading = _dr_grading(dr_grading, task, len(labels))
    role = _choice(raw, "role", ROLES) if "role" in raw else ROLE_DIAGNOSIS
    quality_gate = raw.get("quality_gate")
    if role == ROLE_QUALITY:
        quality_gate = _quality_gate(quality_gate, task, labels)
    elif quality_gate is not None:
        raise CardError('model.json: quality_gate belongs to a card with "role": "quality"')
    lineage = raw.get("lineage")
    if lineage is not None and not isinstance(lineage, dict):
        raise CardError("model.json: lineage must be an object (parent, data_sources, mix)")
    return ModelCard(
        name=name,
        version=version,
        task=task,
        architecture=architecture,
        architecture_kwargs=dict(arch_kwargs),
        input_size=input_size,
        mean=mean,
        std=std,
        preprocessing=preprocessing,
        labels=labels,
        cam=cam,
        weights=weights,
        training_data=_optional_text(raw, "training_data"),
        validation=validation,
        intended_use=_optional_text(raw, "intended_use"),
        demonstration=demonstration,
        evidence=_optional_text(raw, "evidence"),
        dr_grading=dr_grading,
        intended_use_zh=_optional_text(raw, "intended_use_zh"),
        intended_use_en=_optional_text(raw, "intended_use_en"),
        evidence_zh=_optional_text(raw, "evidence_zh"),
        evidence_en=_optional_text(raw, "evidence_en"),
        tta=_tta(raw.get("tta", [])),
        role=role,
        quality_gate=quality_gate,
        trained_on_keys=_trained_on_keys(raw.get("trained_on_keys", [])),
        trained_at=_iso_date(raw, "trained_at"),
        main_condition=_optional_text(raw, "main_condition"),
        lineage=lineage,
    )


def _trained_on_keys(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
        raise CardError("model.json: trained_on_keys must be a list of non-empty strings")
    return tuple(value)


def _iso_date(raw: dict[str, Any], key: str) -> str:
    value = _optional_text(raw, key)
    if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]*)?", value):
        raise CardError(f"model.json: {key} must be an ISO date (YYYY-MM-DD), got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(raw: dict[str, Any], key: str, where: str = "") -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CardError(f"model.json: {where}{key} must be a non-empty string")
    return value


def _optional_text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise CardError(f"model.json: {key} must be a string")
    return value


def _choice(raw: dict[str, Any], key: str, allowed: tuple[Any, ...], where: str = "") -> Any:
    value = raw.get(key)
    if value not in allowed:
        shown = ", ".join("null" if a is None else str(a) for a in allowed)
        raise CardError(f"model.json: {where}{key} must be one of {shown} (got {value!r})")
    return value


def _triple(raw: dict[str, Any], key: str, *, low: float, high: float) -> tuple[float, ...]:
    value = raw.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(_is_number(v) and low <= v <= high for v in value)
    ):
        raise CardError(f"model.json: {key} must be a list of 3 numbers between {low} and {high}")
    return tuple(float(v) for v in value)


def _preprocessing(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise CardError("model.json: preprocessing must be a non-empty list of step names")
    for i, step in enumerate(value):
        if step not in PREPROCESSING_STEPS:
            raise CardError(
                f"model.json: preprocessing[{i}] must be one of "
                f"{', '.join(PREPROCESSING_STEPS)} (got {step!r})"
            )
    if len(set(value)) != len(value):
        raise CardError("model.json: preprocessing must not repeat a step")
    for required in ("resize", "normalize"):
        if required not in value:
            raise CardError(f"model.json: preprocessing must include {required!r}")
    if value[-1] != "normalize":
        raise CardError("model.json: preprocessing must end with 'normalize'")
    order = {step: i for i, step in enumerate(value)}
    # Geometry first (crop, pad, resize), then pixel filters at model size, then normalise.
    for before, after in (
        ("fundus_crop", "pad_square"),
        ("fundus_crop", "resize"),
        ("pad_square", "resize"),
    ):
        if before in order and after in order and order[before] > order[after]:
            raise CardError(f"model.json: preprocessing step {before!r} must come before {after!r}")
    for step in ("clahe", "ben_graham"):
        if step in order and order[step] < order["resize"]:
            raise CardError(f"model.json: preprocessing step {step!r} must come after 'resize'")
    return tuple(value)


def _labels(value: Any, task: str) -> tuple[LabelSpec, ...]:
    if not isinstance(value, list) or not value:
        raise CardError("model.json: labels must be a non-empty list")
    labels = []
    for i, item in enumerate(value):
        where = f"labels[{i}]."
        if not isinstance(item, dict):
            raise CardError(f"model.json: labels[{i}] must be an object")
        code = _text(item, "code", where)
        if not _CODE.match(code):
            raise CardError(
                f"model.json: {where}code must be 1-40 characters of letters, digits, _ . + -"
            )
        threshold = item.get("threshold", 0.5)
        if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise CardError(f"model.json: {where}threshold must be between 0 and 1")
        for flag in ("referable", "normal"):
            if not isinstance(item.get(flag, False), bool):
                raise CardError(f"model.json: {where}{flag} must be true or false")
        labels.append(
            LabelSpec(
                code=code,
                zh=_text(item, "zh", where),
                en=_text(item, "en", where),
                threshold=float(threshold),
                referable=item.get("referable", False),
                normal=item.get("normal", False),
            )
        )
    codes = [label.code for label in labels]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise CardError(f"model.json: labels has duplicate codes {duplicates}")
    if task == "binary" and len(labels) != 1:
        raise CardError(
            "model.json: a binary task declares exactly 1 label (the positive class, one "
            "sigmoid output); declare 2 softmax outputs as task 'multiclass'"
        )
    if task == "multiclass" and len(labels) < 2:
        raise CardError("model.json: a multiclass task needs at least 2 labels")
    return tuple(labels)


def _cam(value: Any) -> CamSpec:
    if not isinstance(value, dict):
        raise CardError("model.json: cam must be an object with method and target_layers")
    method = _choice(value, "method", CAM_METHODS, "cam.")
    layers = value.get("target_layers")
    if not isinstance(layers, list) or not layers:
        raise CardError("model.json: cam.target_layers must be a non-empty list of layer paths")
    for i, layer in enumerate(layers):
        if not isinstance(layer, str) or not _LAYER_PATH.match(layer):
            raise CardError(
                f"model.json: cam.target_layers[{i}] must be a dotted module path such as "
                f"'layer4.-1' or 'blocks.-1.norm1' (got {layer!r})"
            )
    reshape = _choice(value, "reshape", CAM_RESHAPES, "cam.") if "reshape" in value else None
    return CamSpec(method=method, target_layers=tuple(layers), reshape=reshape)


def _weights(value: Any) -> WeightsSpec:
    if not isinstance(value, dict):
        raise CardError("model.json: weights must be an object with file and sha256")
    file = _text(value, "file", "weights.")
    if Path(file).name != file or file in (".", ".."):
        raise CardError("model.json: weights.file must be a plain file name inside the package")
    sha256 = value.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise CardError("model.json: weights.sha256 must be 64 lowercase hexadecimal characters")
    fmt = value.get("format", "safetensors" if file.endswith(".safetensors") else "pth")
    if fmt not in WEIGHT_FORMATS:
        raise CardError(f"model.json: weights.format must be one of {', '.join(WEIGHT_FORMATS)}")
    dtype = value.get("dtype", "float32")
    if dtype not in WEIGHT_DTYPES:
        raise CardError(f"model.json: weights.dtype must be one of {', '.join(WEIGHT_DTYPES)}")
    return WeightsSpec(file=file, sha256=sha256, format=fmt, dtype=dtype)


def _tta(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(item not in TTA_STEPS for item in value):
        raise CardError(f"model.json: tta must be a list of {', '.join(TTA_STEPS)}")
    return tuple(dict.fromkeys(value))


def _dr_grading(value: Any, task: str, n_labels: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError("model.json: dr_grading must be an object")
    scheme = _choice(value, "scheme", DR_SCHEMES, "dr_grading.")
    expected = 5 if scheme == "icdr_0_4" else 4
    if task != "multiclass" or n_labels != expected:
        raise CardError(
            f"model.json: dr_grading.scheme {scheme} needs a multiclass task with {expected} labels"
        )
    referable_from = value.get("referable_from", 2)
    if not _is_int(referable_from) or not 0 <= referable_from < expected:
        raise CardError(f"model.json: dr_grading.referable_from must be a grade 0-{expected - 1}")
    threatening_from = value.get("vision_threatening_from", 3)
    if not _is_int(threatening_from) or not referable_from <= threatening_from < expected:
        raise CardError(
            "model.json: dr_grading.vision_threatening_from must be a grade from referable_from "
            f"to {expected - 1}"
        )
    # The operating point: referable when P(grade >= referable_from) reaches this threshold
    # (chosen on validation, sensitivity first); None means the argmax grade decides.
    threshold = value.get("referable_threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0.0 < threshold < 1.0
    ):
        raise CardError("model.json: dr_grading.referable_threshold must be a number in (0, 1)")
    result: dict[str, Any] = {
        "scheme": scheme,
        "referable_from": referable_from,
        "vision_threatening_from": threatening_from,
        "referable_threshold": None if threshold is None else float(threshold),
    }
    if value.get("operating_point") is not None:
        if threshold is None:
            raise CardError(
                "model.json: dr_grading.operating_point needs a referable_threshold to describe"
            )
        result["operating_point"] = _operating_point(value["operating_point"])
    return result


OPERATING_POINT_SPLITS = ("validation",)


def _operating_point(value: Any) -> dict[str, Any]:
    """How ``referable_threshold`` was chosen: the sensitivity target, on which split (never the
    test split), and optionally the counts and the sensitivity/specificity it gave there."""
    where = "model.json: dr_grading.operating_point"
    if not isinstance(value, dict):
        raise CardError(f"{where} must be an object")
    target = value.get("sensitivity_target")
    if not _is_number(target) or not 0.0 < target <= 1.0:
        raise CardError(f"{where}.sensitivity_target must be a number in (0, 1]")
    chosen_on = _choice(value, "chosen_on", OPERATING_POINT_SPLITS, "dr_grading.operating_point.")
    result: dict[str, Any] = {"sensitivity_target": float(target), "chosen_on": chosen_on}
    for key in ("n_images", "n_positive", "n_negative"):
        if key in value:
            if not _is_int(value[key]) or value[key] < 0:
                raise CardError(f"{where}.{key} must be a whole number ≥ 0")
            result[key] = value[key]
    for key in ("sensitivity", "specificity"):
        if key in value:
            if not _is_number(value[key]) or not 0.0 <= value[key] <= 1.0:
                raise CardError(f"{where}.{key} must be a number between 0 and 1")
            result[key] = float(value[key])
    unknown = sorted(set(value) - set(result))
    if unknown:
        raise CardError(f"{where} has unknown fields {unknown}")
    return result


def _quality_gate(value: Any, task: str, labels: tuple[LabelSpec, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError(
            'model.json: a card with "role": "quality" needs a quality_gate object '
            "(reject_label, reject_threshold)"
        )
    if task not in ("multiclass", "binary"):
        raise CardError("model.json: a quality model is multiclass or binary (one reject output)")
    codes = [label.code for label in labels]
    reject_label = value.get("reject_label")
    if reject_label not in codes:
        raise CardError(
            f"model.json: quality_gate.reject_label must be one of the labels {codes} "
            f"(got {reject_label!r})"
        )
    threshold = value.get("reject_threshold")
    if not _is_number(threshold) or not 0.0 < threshold < 1.0:
        raise CardError("model.json: quality_gate.reject_threshold must be a number in (0, 1)")
    gate = {"reject_label": reject_label, "reject_threshold": float(threshold)}
    # Figures the threshold was chosen with (validation), kept for the record.
    chosen_on = value.get("chosen_on")
    if chosen_on is not None:
        if not isinstance(chosen_on, dict):
            raise CardError("model.json: quality_gate.chosen_on must be an object")
        gate["chosen_on"] = chosen_on
    return gate

"""Wrap an external timm-compatible checkpoint (``.pth``/``.safetensors``) into a model package.

The card is a draft for the user to complete: it is marked ``demonstration`` with empty
validation until ``evaluate_model`` figures are added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_engine.inference.card import CardError, ModelCard, parse_card
from ai_engine.inference.package import resolve_module, write_package

from . import nets
from .labels import dr_grading_for, parse_labels


class ImportError_(ValueError):  # noqa: N801 - ImportError is a builtin
    """The checkpoint cannot be wrapped; the message says why."""


@dataclass
class ImportConfig:
    checkpoint: str
    arch: str
    labels: str
    out: str
    task: str = "multilabel"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    preprocessing: list[str] = field(
        default_factory=lambda: ["fundus_crop", "pad_square", "resize", "normalize"]
    )
    name: str = ""
    version: str = "0.1.0"
    cam_method: str | None = None
    cam_layers: list[str] | None = None
    fp16: bool = False
    training_data: str = ""


def import_checkpoint(config: ImportConfig) -> ModelCard:
    labels = parse_labels(config.labels)
    outputs = 1 if config.task == "binary" else len(labels)
    if config.task == "binary" and len(labels) != 1:
        raise ImportError_("a binary model has exactly one label (its positive class)")
    state = nets.read_checkpoint(config.checkpoint)
    model = nets.create(config.arch, outputs, config.arch_kwargs)
    # A classifier of another size is a label mismatch, the commonest mistake: say so plainly.
    head = model.get_classifier()
    head_name = next((n for n, m in model.named_modules() if m is head and n), None)
    head_weight = state.get(f"{head_name}.weight") if head_name else None
    if head_weight is not None and head_weight.shape[0] != outputs:
        raise ImportError_(
            f"label mismatch: the checkpoint's classifier {head_name}.weight has "
            f"{head_weight.shape[0]} outputs but --labels/--task give {outputs}"
        )
    try:
        nets.load_weights(model, state, strict_head=True)
    except nets.NetError as exc:
        raise ImportError_(str(exc)) from None
    mean, std = nets.mean_std(model)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    input_size = config.input_size or int((cfg.get("input_size") or (3, 224, 224))[-1])
    if config.cam_layers:
        vit = hasattr(model, "patch_embed") and hasattr(model, "blocks")
        cam = {
            "method": config.cam_method or ("gradcam" if vit else "layercam"),
            "target_layers": list(config.cam_layers),
            "reshape": "vit" if vit else None,
        }
    else:
        cam = nets.default_cam(model, input_size)
        if config.cam_method:
            cam["method"] = config.cam_method
    card: dict[str, Any] = {
        "name": config.name or Path(config.out).name,
        "version": config.version,
        "task": config.task,
        "architecture": config.arch,
        "architecture_kwargs": dict(config.arch_kwargs),
        "input_size": input_size,
        "mean": config.mean or mean,
        "std": config.std or std,
        "preprocessing": list(config.preprocessing),
        "labels": [label.card_entry() for label in labels],
        "cam": cam,
        "weights": {"file": "model.safetensors", "sha256": "0" * 64},
        "training_data": config.training_data
        or f"Imported from {Path(config.checkpoint).name}; training data not described yet.",
        "validation": {},
        "intended_use": "Imported model, not yet validated here — demonstration only, not for "
        "diagnosis. Run evaluate_model and record its figures in this card.",
        "intended_use_zh": "导入的模型，尚未在本系统验证——仅用于演示，不可用于诊断。"
        "请运行 evaluate_model 并将结果记入本模型卡。",
        "demonstration": True,
        "evidence": "Imported checkpoint, not validated here; not for diagnosis",
        "evidence_zh": "导入的模型，未在本系统验证；不可用于诊断",
    }
    grading = dr_grading_for(labels) if config.task == "multiclass" else None
    if grading:
        card["dr_grading"] = grading
    try:
        parsed = parse_card(card)
        for layer in parsed.cam.target_layers:
            resolve_module(model, layer)
    except CardError as exc:
        raise ImportError_(str(exc)) from None
    return write_package(config.out, model, card, fp16=config.fp16)

"""Train a timm model on a fundus dataset and write a model package.

Recipe: patient-level train/validation(/test) split with a fixed seed; optional phase 1
with the backbone frozen (head only, ``lr1``), then the whole network (``lr2``); AdamW with a
per-phase linear warm-up and cosine decay; median-frequency oversampling or class-weighted
loss (focal, BCE or CE); early stopping on validation macro-F1; per-label thresholds tuned on
validation; held-out metrics on the test split (or validation when there is none).

A checkpoint is written after every epoch; ``resume=True`` continues from it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ai_engine.inference.card import CardError, ModelCard, parse_card
from ai_engine.inference.package import resolve_device, resolve_module, write_package

from . import nets
from .augment import TensorAugment, mix_batch, normalise_float
from .data import (
    LabelledSet,
    SquareDataset,
    build_cache,
    load_datasets,
    normalise_batch,
    split_by_patient,
)
from .grading import (
    DEFAULT_SENSITIVITY_TARGET,
    choose_operating_point,
    evidence_texts,
    grading_figures,
)
from .labels import dr_grading_for, parse_labels
from .lineage import (
    CLINIC_SOURCE,
    apply_mix,
    check_labels,
    inherit,
    is_package,
    learning_fields,
    lineage_record,
    lineage_text,
    read_parent,
    source_counts,
)
from .losses import make_loss, sample_weights
from .metrics import bootstrap_ci, evaluate_predictions, tune_class_offsets, tune_thresholds

CHECKPOINT = "checkpoint.pt"
DATA_NOTE = (
    "Public research photographs without a licence that allows redistribution; the model is "
    "for research and demonstration only and its training data is not redistributable."
)
# Settings that may change between a run and its --resume (a resumed run gets a new budget
# for what remains).
RESUMABLE = {
    "resume",
    "sensitivity_target",  # used after the last epoch only
    "budget_minutes",
    "device",
    "threads",
    "out",
    "cache_dir",
    "command",
    "progress",
    "keep_checkpoint",
}


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""


@dataclass
class TrainConfig:
    data: str | list[str]  # several: sources pooled (data.load_datasets)
    out: str
    task: str = "multiclass"
    labels: str | None = None
    images: str | None = None
    label_column: str | list[str] = "label"
    positive: list[str] | None = None
    where: dict[str, str] = field(default_factory=dict)
    arch: str = "resnet18"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int = 224
    preprocessing: list[str] = field(
        default_factory=lambda: ["fundus_crop", "pad_square", "resize", "normalize"]
    )
    init: str | None = None  # local weights or a model package to start from (no downloads)
    bn_init: str = "recalibrate"  # with --init: recalibrate, freeze or keep its BatchNorm
    mean: list[float] | None = None  # default: the --init file's metadata, else timm's
    std: list[float] | None = None
    epochs: int = 30  # in all, phase 1 included
    phase1_epochs: int = 3
    lr1: float = 1e-3
    lr2: float = 1e-5
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    batch_size: int = 32
    loss: str = "focal"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    oversample: bool = True
    augment: bool = True
    photometric: float = 1.0  # scales the brightness/contrast/gamma jitter (0 = geometry only)
    rotate: float = 180.0  # ± degrees (180: any angle)
    mixup: float = 0.0  # Beta α of mixup; 0 = off
    cutmix: float = 0.0  # Beta α of CutMix; 0 = off
    budget_minutes: float | None = None  # wall-clock budget: the schedule is fitted to it
    ema: float = 0.0  # EMA decay of the weights evaluated and saved; 0 = off
    tune_offsets: bool = True  # multiclass: per-class logit offsets tuned on validation
    sensitivity_target: float = DEFAULT_SENSITIVITY_TARGET  # DR: referable operating point
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    patience: int = 8
    seed: int = 0
    mix: dict[str, float] | None = None  # clinic : public photos, e.g. {"clinic": 1, "public": 3}
    main_condition: str = ""  # card main_condition; default: the --init package's
    device: str = "auto"
    threads: int | None = None
    name: str = ""
    version: str = "0.1.0"
    cam_method: str | None = None
    cam_layers: list[str] | None = None
    fp16: bool = True
    demonstration: bool = True
    intended_use: str = "Demonstration — not for diagnosis."
    data_note: str = DATA_NOTE
    command: str = ""
    cache_dir: str | None = None
    resume: bool = False
    keep_checkpoint: bool = False
    progress: bool = True


@dataclass
class TrainResult:
    package: Path
    card: ModelCard
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may use the global generator
    torch.manual_seed(seed)


def lr_at(step: int, steps_per_epoch: int, config: TrainConfig, epochs: int | None = None) -> float:
    """Learning rate at a global step: each phase warms up linearly, then decays by cosine
    (to the end of ``epochs``, by default ``config.epochs``; a budget may plan fewer)."""
    epochs = config.epochs if epochs is None else epochs
    phase1 = config.phase1_epochs * steps_per_epoch
    if step < phase1:
        base, start, length = config.lr1, 0, phase1
    else:
        base, start, length = (
            config.lr2,
            phase1,
            (epochs - config.phase1_epochs) * steps_per_epoch,
        )
    position = step - start
    warmup = min(length // 2, round(config.warmup_epochs * steps_per_epoch))
    if position < warmup:
        return base * (position + 1) / warmup
    progress = (position - warmup) / max(1, length - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _set_phase(model: nn.Module, frozen: bool, freeze_bn: bool = False) -> None:
    """Phase 1 trains only the classifier; BatchNorm statistics of the frozen backbone stay put."""
    head_params = {id(p) for p in model.get_classifier().parameters()}
    for param in model.parameters():
        param.requires_grad_(not frozen or id(param) in head_params)
    model.train()
    if frozen:
        model.eval()
        model.get_classifier().train()
    elif freeze_bn:
        nets.freeze_batchnorm(model)


@dataclass
class _TrainData:
    """The training split as uint8 tensors on the device, drawn and augmented there."""

    images: torch.Tensor  # N×3×S×S uint8
    targets: torch.Tensor  # N×K float
    weights: torch.Tensor | None  # drawing weights (oversampling), on the CPU
    batch_size: int
    generator: torch.Generator  # CPU: which photos each epoch
    aug_generator: torch.Generator  # the device's: augmentation and mixing
    augment: TensorAugment | None

    @property
    def steps(self) -> int:
        return len(self.images) // self.batch_size

    def epoch_order(self) -> torch.Tensor:
        count = self.steps * self.batch_size
        if self.weights is not None:
            return torch.multinomial(
                self.weights, count, replacement=True, generator=self.generator
            )
        return torch.randperm(len(self.images), generator=self.generator)[:count]


class Trainer:
    def __init__(self, config: TrainConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.log = log
        self.out = Path(config.out)

    # --- set-up -------------------------------------------------------------------------------
    def _validate(self) -> None:
        c = self.config
        if c.epochs < 1 or not 0 <= c.phase1_epochs < c.epochs:
            raise TrainingError("--epochs must be ≥ 1 and --phase1-epochs between 0 and epochs − 1")
        if c.lr1 <= 0 or c.lr2 <= 0:
            raise TrainingError("learning rates must be positive")
        if c.batch_size < 2:
            raise TrainingError("--batch-size must be at least 2")
        if not 0 < c.val_fraction < 1 or not 0 <= c.test_fraction < 1:
            raise TrainingError("--val-fraction must be in (0, 1) and --test-fraction in [0, 1)")
        if not 0 < c.sensitivity_target <= 1:
            raise TrainingError("--sensitivity-target must be in (0, 1]")
        if c.init is None and c.lr2 < 1e-4:
            self.log(
                f"note: training from scratch with --lr2 {c.lr2:g}; from-scratch runs usually "
                "want --phase1-epochs 0 and --lr2 around 1e-3"
            )

    def _draft_card(self, labelled: LabelledSet, model: nn.Module, mean, std) -> dict[str, Any]:
        c = self.config
        if c.cam_layers:
            cam = {
                "method": c.cam_method or "layercam",
                "target_layers": list(c.cam_layers),
                "reshape": "vit"
                if "blocks" in c.cam_layers[0] and hasattr(model, "patch_embed")
                else None,
            }
        else:
            cam = nets.default_cam(model, c.input_size)
            if c.cam_method:
                cam["method"] = c.cam_method
        card: dict[str, Any] = {
            "name": c.name or f"{Path(c.out).name}",
            "version": c.version,
            "task": c.task,
            "architecture": c.arch,
            "architecture_kwargs": dict(self.arch_kwargs),
            "input_size": c.input_size,
            "mean": mean,
            "std": std,
            "preprocessing": list(c.preprocessing),
            "labels": [label.card_entry() for label in labelled.labels],
            "cam": cam,
            "weights": {"file": "model.safetensors", "sha256": "0" * 64},
            "training_data": "",
            "validation": {},
            "intended_use": c.intended_use,
            "intended_use_en": c.intended_use,
            "intended_use_zh": INTENDED_USE_ZH.get(c.intended_use, ""),
            "demonstration": c.demonstration,
            "evidence": "",
        }
        if self.lineage is not None:
            card["lineage"] = self.lineage
        grading = dr_grading_for(labelled.labels) if c.task == "multiclass" else None
        if grading:
            card["dr_grading"] = grading
        return card

    def _train_data(
        self, squares, targets, train_idx, device: torch.device, generator: torch.Generator
    ) -> _TrainData:
        c = self.config
        if len(train_idx) < c.batch_size:
            raise TrainingError(
                f"the training split has {len(train_idx)} images, fewer than --batch-size {c.batch_size}"
            )
        images = torch.from_numpy(np.ascontiguousarray(squares[train_idx])).permute(0, 3, 1, 2)
        weights = None
        if c.oversample:
            weights = torch.as_tensor(
                sample_weights(targets[train_idx], c.task), dtype=torch.double
            )
        augment = None
        if c.augment:
            augment = TensorAugment(rotate=c.rotate).scaled_photometric(c.photometric)
        return _TrainData(
            images=images.contiguous().to(device),
            targets=torch.as_tensor(targets[train_idx], dtype=torch.float32).to(device),
            weights=weights,
            batch_size=c.batch_size,
            generator=generator,
            aug_generator=torch.Generator(device=device).manual_seed(c.seed),
            augment=augment,
        )

    def _eval_loader(self, squares, targets, idx) -> DataLoader:
        return DataLoader(
            SquareDataset(squares, targets, idx), 2 * self.config.batch_size, num_workers=0
        )

    def _recalibrate(self, model: nn.Module, squares, train_idx, device) -> None:
        """BatchNorm statistics from up to 256 training photos (un-augmented), eval unchanged."""
        c = self.config
        chosen = sorted(np.random.default_rng(c.seed).permutation(train_idx)[:256].tolist())
        batches = (
            normalise_batch(
                torch.from_numpy(np.ascontiguousarray(squares[chosen[i : i + 32]]))
                .permute(0, 3, 1, 2)
                .to(device),
                self.mean,
                self.std,
            )
            for i in range(0, len(chosen), 32)
        )
        seen = nets.recalibrate_batchnorm(model, batches)
        self.log(f"BatchNorm recalibrated on {seen} training photos (eval function unchanged)")

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c = self.config
        began = time.time()
        self._validate()
        if c.threads:
            torch.set_num_threads(c.threads)
        seed_everything(c.seed)
        device = resolve_device(c.device)
        parent = None
        if c.init and is_package(c.init):
            parent = read_parent(c.init)
            c = self.config = inherit(c, parent, TrainConfig(data="", out=""))
        labels = parse_labels(c.labels) if c.labels else None
        if parent is not None:
            labels = check_labels(parent, labels)
        labelled = load_datasets(
            c.data,
            task=c.task,
            labels=labels,
            images=c.images,
            label_column=c.label_column,
            positive=c.positive,
            where=c.where,
        )
        available = source_counts(labelled)
        if c.mix:
            labelled = apply_mix(labelled, c.mix, c.seed)
        self.lineage = None
        if parent is not None or c.mix or CLINIC_SOURCE in available:
            self.lineage = lineage_record(
                parent=parent, available=available, used=source_counts(labelled), mix=c.mix
            )
        dropped = ", ".join(f"{n} ({why})" for why, n in labelled.dropped.items())
        self.log(
            f"{labelled.description}: {len(labelled.samples)} images, "
            f"{len({s.patient for s in labelled.samples})} patients; per label {labelled.counts()}"
            + (f"; left out {dropped}" if dropped else "")
        )
        num_outputs = 1 if c.task == "binary" else len(labelled.labels)
        init = nets.read_init(parent.weights if parent else c.init) if c.init else None
        if init is not None and init.arch and init.arch != c.arch:
            raise TrainingError(
                f"--init {c.init} holds {init.arch} weights; pass --arch {init.arch}"
            )
        self.arch_kwargs = {**(init.kwargs if init else {}), **c.arch_kwargs}
        self.init_text = init.provenance() if init else ""
        if parent is not None:
            self.init_text = (
                f"initialised from the package {parent.card.name} {parent.card.version} "
                f"(weights sha256 {parent.sha256[:16]}…)"
            )
        model = nets.create(c.arch, num_outputs, self.arch_kwargs)
        if init is not None:
            nets.load_weights(model, init.state, strict_head=False)
            self.log(f"{self.init_text}" + (f" ({init.note})" if init.note else ""))
        mean, std = nets.mean_std(model)
        mean = c.mean or (init.mean if init and init.mean else mean)
        std = c.std or (init.std if init and init.std else std)
        self.mean, self.std = mean, std
        try:
            draft = self._draft_card(labelled, model, mean, std)
            card = parse_card(draft)
            for layer in card.cam.target_layers:
                resolve_module(model, layer)
        except CardError as exc:
            raise TrainingError(str(exc)) from None

        self.log(f"preprocessing {len(labelled.samples)} photos to {c.input_size} px (cached) …")
        squares = build_cache(labelled.samples, card, c.cache_dir, progress=self._bar("cache"))
        targets = labelled.targets()
        fractions = [c.val_fraction] + ([c.test_fraction] if c.test_fraction > 0 else [])
        parts = split_by_patient(labelled.samples, fractions=fractions, seed=c.seed)
        train_idx, val_idx = parts[0], parts[1]
        test_idx = parts[2] if len(parts) > 2 else []
        for name, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
            if idx:
                counts = targets[idx].sum(axis=0).astype(int).tolist()
                self.log(
                    f"{name}: {len(idx)} images, per label {dict(zip(card_codes(card), counts, strict=True))}"
                )
        if not val_idx:
            raise TrainingError(
                "the validation split is empty; use more data or a larger --val-fraction"
            )

        generator = torch.Generator().manual_seed(c.seed)
        train_data = self._train_data(squares, targets, train_idx, device, generator)
        val_loader = self._eval_loader(squares, targets, val_idx)
        try:
            loss_fn = make_loss(
                c.loss,
                c.task,
                targets[train_idx],
                balance=not c.oversample,
                gamma=c.focal_gamma,
                label_smoothing=c.label_smoothing,
            ).to(device)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        model.to(device)
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        if init is not None and c.bn_init == "recalibrate" and not c.resume:
            self._recalibrate(model, squares, train_idx, device)
        optimizer = torch.optim.AdamW(_param_groups(model, c.weight_decay), lr=1.0)
        steps_per_epoch = train_data.steps
        state = {
            "epoch": 0,
            "best_score": -1.0,
            "best_epoch": -1,
            "bad_epochs": 0,
            "history": [],
            "planned_epochs": c.epochs,
        }
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_at(step, steps_per_epoch, c, state["planned_epochs"])
        )
        ema = _Ema(model, c.ema) if c.ema > 0 else None
        amp_dtype = None
        if device.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

        best_weights = copy.deepcopy((ema.module if ema else model).state_dict())
        checkpoint_path = self.out / CHECKPOINT
        resumable = _Resumable(model, optimizer, scheduler, ema, scaler, train_data)
        if c.resume:
            best_weights = self._resume(checkpoint_path, resumable, state)

        phase1 = c.phase1_epochs
        budget = _Budget(c.budget_minutes, began)
        for epoch in range(state["epoch"], c.epochs):
            if epoch >= state["planned_epochs"]:
                break
            if state["bad_epochs"] >= c.patience and epoch >= phase1:
                break
            if budget.exhausted():
                self.log(f"budget: {c.budget_minutes:g} min reached after {epoch} epochs")
                break
            frozen = epoch < phase1
            _set_phase(model, frozen, freeze_bn=init is not None and c.bn_init == "freeze")
            if epoch == phase1 and phase1:
                state["bad_epochs"] = 0  # the fine-tune phase gets its own patience
            epoch_began = time.time()
            loss = self._train_epoch(
                model,
                train_data,
                loss_fn,
                optimizer,
                scheduler,
                scaler,
                amp_dtype,
                ema,
                device,
                epoch,
                frozen,
            )
            evaluated = ema.module if ema else model
            trained_seconds = time.time() - epoch_began
            probs = predict_probs(evaluated, val_loader, card, device)
            val_targets = targets[val_idx]
            thresholds = _thresholds(val_targets, probs, c.task)
            metrics = evaluate_predictions(val_targets, probs, card_codes(card), c.task, thresholds)
            score = metrics["macro_f1"]
            aucs = {k: v["auc"] for k, v in metrics["per_label"].items()}
            record = {
                "epoch": epoch + 1,
                "phase": 1 if frozen else 2,
                "loss": round(loss, 5),
                "lr": optimizer.param_groups[0]["lr"],
                "val_macro_f1": round(score, 4),
                "val_auc": {k: None if v is None else round(v, 4) for k, v in aucs.items()},
                "seconds": round(time.time() - epoch_began, 1),
            }
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
                best_weights = copy.deepcopy(evaluated.state_dict())
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            state["history"].append(record)
            auc_text = " ".join(f"{k} {v:.3f}" for k, v in aucs.items() if v is not None)
            self.log(
                f"epoch {epoch + 1}/{c.epochs} phase {record['phase']} loss {loss:.4f} "
                f"val macro-F1 {score:.4f}{' *' if improved else ''} AUC {auc_text}"
            )
            budget.record(time.time() - epoch_began, time.time() - epoch_began - trained_seconds)
            if budget.active:  # re-fitted after every epoch: shared machines change speed
                planned = budget.plan(epoch + 1, c.epochs, phase1)
                if planned != state["planned_epochs"]:
                    state["planned_epochs"] = planned
                    self.log(
                        f"budget: {c.budget_minutes:g} min fits {planned} epochs "
                        f"({budget.epoch_seconds:.0f} s each); the schedule ends there"
                    )
            self._save_checkpoint(checkpoint_path, resumable, state, best_weights)

        # Best epoch's weights → thresholds on validation → metrics on the held-out split.
        final = nets.create(c.arch, num_outputs, self.arch_kwargs)
        final.load_state_dict(best_weights)
        final.to(device).eval()
        val_probs = predict_probs(final, val_loader, card, device)
        offsets = None
        if c.task == "multiclass" and c.tune_offsets:
            offsets = self._fold_offsets(final, targets[val_idx], val_probs)
            if offsets is not None:
                val_probs = predict_probs(final, val_loader, card, device)
        thresholds = _thresholds(targets[val_idx], val_probs, c.task)
        if test_idx:
            test_loader = self._eval_loader(squares, targets, test_idx)
            held_probs, held_idx, split_name = (
                predict_probs(final, test_loader, card, device),
                test_idx,
                "test",
            )
        else:
            held_probs, held_idx, split_name = val_probs, val_idx, "validation"
        metrics = evaluate_predictions(
            targets[held_idx], held_probs, card_codes(card), c.task, thresholds
        )
        metrics["ci95"] = bootstrap_ci(
            targets[held_idx],
            held_probs,
            card_codes(card),
            c.task,
            thresholds,
            groups=[labelled.samples[i].patient for i in held_idx],
            seed=c.seed,
        )
        patients = {
            name: sorted({labelled.samples[i].patient for i in idx})
            for name, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx))
        }
        metrics.update(
            split=split_name,
            n_patients=len(patients[split_name]),
            n_per_label={
                code: int(n)
                for code, n in zip(card_codes(card), targets[held_idx].sum(axis=0), strict=True)
            },
            selection=(
                "epoch chosen by validation macro-F1; thresholds tuned on validation; "
                + (
                    "figures from held-out test patients never used for either"
                    if test_idx
                    else "figures from the same validation patients (optimistic)"
                )
            ),
            best_epoch=state["best_epoch"],
            epochs_run=state["epoch"],
        )
        if offsets is not None:
            metrics["class_offsets"] = dict(zip(card_codes(card), offsets, strict=True))
            metrics["selection"] += "; per-class logit offsets tuned on validation (in the bias)"
        seconds = time.time() - began
        draft["labels"] = [
            label.card_entry(t) for label, t in zip(labelled.labels, thresholds, strict=True)
        ]
        draft["validation"] = metrics
        draft["training_data"] = self._data_text(labelled, train_idx, val_idx, test_idx)
        if self.lineage is not None:
            draft.update(
                learning_fields(
                    labelled,
                    [*train_idx, *val_idx],
                    parent=parent,
                    main_condition=c.main_condition,
                )
            )
        if c.budget_minutes:
            draft["training_data"] += (
                f" The {c.budget_minutes:g}-minute budget fitted {state['planned_epochs']} epochs "
                f"({state['epoch']} run); --epochs {state['planned_epochs']} without "
                "--budget-minutes repeats that schedule on any machine."
            )
        names = {label.code: label.zh for label in card.labels}
        draft["evidence"] = evidence_line(metrics, card_codes(card), c.demonstration)
        draft["evidence_en"] = draft["evidence"]
        draft["evidence_zh"] = evidence_line_zh(metrics, names, c.demonstration)
        if card.dr_grading is not None:
            grading = self._operating_point(dict(card.dr_grading), targets[val_idx], val_probs)
            draft["dr_grading"] = grading
            metrics["dr_grading"] = grading_figures(
                targets[held_idx],
                held_probs,
                grading,
                groups=[labelled.samples[i].patient for i in held_idx],
                seed=c.seed,
            )
            draft.update(
                evidence_texts(
                    evidence_line(metrics, card_codes(card), False),
                    evidence_line_zh(metrics, names, False),
                    metrics["dr_grading"],
                    grading,
                    c.demonstration,
                )
            )
        written = write_package(self.out, final, draft, fp16=c.fp16)
        self._write_sidecars(c, labelled, patients, state, seconds, thresholds)
        if not c.keep_checkpoint:
            checkpoint_path.unlink(missing_ok=True)
        self.log(f"wrote {self.out} ({written.name} {written.version}): {written.evidence}")
        return TrainResult(self.out, written, metrics, state["history"], seconds)

    def _operating_point(
        self, grading: dict[str, Any], targets: np.ndarray, probs: np.ndarray
    ) -> dict[str, Any]:
        """The referable threshold chosen on validation, sensitivity first (never on test)."""
        try:
            threshold, point = choose_operating_point(
                targets, probs, grading["referable_from"], self.config.sensitivity_target
            )
        except ValueError as exc:
            self.log(f"note: no referable operating point ({exc}); the argmax grade decides")
            return grading
        self.log(
            f"referable operating point P(grade >= {grading['referable_from']}) >= {threshold} "
            f"(validation sensitivity {point['sensitivity']:.3f}, specificity "
            f"{point['specificity']:.3f}, target {point['sensitivity_target']:.2f})"
        )
        return {**grading, "referable_threshold": threshold, "operating_point": point}

    def _fold_offsets(
        self, model: nn.Module, targets: np.ndarray, probs: np.ndarray
    ) -> list[float] | None:
        """Multiclass decision offsets tuned on validation, added to the classifier's bias."""
        head = model.get_classifier()
        if not isinstance(head, nn.Linear) or head.bias is None:
            self.log("note: the classifier is not a Linear layer with a bias; no class offsets")
            return None
        offsets = tune_class_offsets(targets, probs)
        with torch.no_grad():
            head.bias.add_(torch.tensor(offsets, dtype=head.bias.dtype, device=head.bias.device))
        self.log(f"class logit offsets tuned on validation: {offsets}")
        return offsets

    def _train_epoch(
        self,
        model,
        data: _TrainData,
        loss_fn,
        optimizer,
        scheduler,
        scaler,
        amp_dtype,
        ema,
        device,
        epoch,
        frozen,
    ) -> float:
        c = self.config
        total, count = 0.0, 0
        order = data.epoch_order().view(data.steps, data.batch_size).to(device)
        bar = tqdm(
            order,
            desc=f"epoch {epoch + 1}/{c.epochs}" + (" (head only)" if frozen else ""),
            leave=False,
            disable=not c.progress,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
            file=sys.stderr,
        )
        cuda = device.type == "cuda"
        for index in bar:
            raw = data.images.index_select(0, index)
            labels = data.targets.index_select(0, index)
            if data.augment is not None:
                images = data.augment(raw, data.aug_generator)
            else:
                images = raw.float().div_(255.0)
            images = normalise_float(images, self.mean, self.std)
            images, labels, partner, lam = mix_batch(
                images, labels, mixup=c.mixup, cutmix=c.cutmix, generator=data.aug_generator
            )
            if cuda:
                images = images.contiguous(memory_format=torch.channels_last)
            autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()
            with autocast:
                logits = model(images)
            loss = loss_fn(logits.float(), labels)
            if lam < 1.0:
                loss = lam * loss + (1.0 - lam) * loss_fn(logits.float(), partner)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            total += float(loss.detach()) * len(images)
            count += len(images)
            bar.set_postfix(
                loss=f"{total / count:.4f}",
                lr=f"{optimizer.param_groups[0]['lr']:.2e}",
                refresh=False,
            )
        bar.close()
        return total / max(1, count)

    def _bar(self, name: str):
        def wrap(iterable, total):
            return tqdm(
                iterable,
                total=total,
                desc=name,
                disable=not self.config.progress,
                mininterval=1.0 if sys.stderr.isatty() else 30.0,
                file=sys.stderr,
                leave=False,
            )

        return wrap

    # --- checkpoints --------------------------------------------------------------------------
    def _save_checkpoint(
        self, path: Path, resumable: _Resumable, state: dict, best_weights: dict
    ) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        payload = {
            "config": _config_identity(self.config),
            **resumable.state_dicts(),
            "best_weights": best_weights,
            "state": json.dumps(state),
        }
        partial = path.with_suffix(".partial")
        torch.save(payload, partial)
        os.replace(partial, path)

    def _resume(self, path: Path, resumable: _Resumable, state: dict) -> dict[str, torch.Tensor]:
        if not path.is_file():
            raise TrainingError(f"--resume: no checkpoint at {path}")
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
        saved = {k: v for k, v in payload["config"].items() if k not in RESUMABLE}
        current = _config_identity(self.config)
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if changed:
            raise TrainingError(
                f"--resume: the checkpoint was made with other settings: {', '.join(changed)}"
            )
        resumable.load_state_dicts(payload)
        state.update(json.loads(payload["state"]))
        self.log(f"resumed from {path} after epoch {state['epoch']}")
        return payload["best_weights"]

    # --- the card -----------------------------------------------------------------------------
    def _data_text(self, labelled: LabelledSet, train_idx, val_idx, test_idx) -> str:
        c = self.config
        n_patients = len({s.patient for s in labelled.samples})
        counts = ", ".join(f"{k} {v}" for k, v in labelled.counts().items())
        split = f"{len(train_idx)} train / {len(val_idx)} validation" + (
            f" / {len(test_idx)} test" if test_idx else ""
        )
        return (
            f"{labelled.description}: {len(labelled.samples)} photos of {n_patients} patients "
            f"({counts}); patient-level split (seed {c.seed}): {split} images. "
            f"Preprocessing: {', '.join(c.preprocessing)} at {c.input_size} px. "
            + (f"Weights {self.init_text}. " if self.init_text else "")
            + (f"{lineage_text(self.lineage)} " if self.lineage else "")
            + c.data_note
            + (f" Reproduce with: {c.command}" if c.command else "")
        )

    def _write_sidecars(
        self, c: TrainConfig, labelled, patients, state, seconds, thresholds
    ) -> None:
        """``training.json`` (recipe, history) and ``split.json`` (patients per split)."""
        config = {
            k: v
            for k, v in asdict(c).items()
            if k not in ("resume", "progress", "keep_checkpoint", "cache_dir")
        }
        (self.out / "training.json").write_text(
            json.dumps(
                {
                    "command": c.command,
                    "config": config,
                    "seconds": round(seconds, 1),
                    "best_epoch": state["best_epoch"],
                    "history": state["history"],
                    "torch": torch.__version__,
                },
                ensure_ascii=False,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        (self.out / "split.json").write_text(
            json.dumps({"seed": c.seed, "data": c.data, "where": c.where, **patients}, indent=1)
            + "\n",
            encoding="utf-8",
        )


@dataclass
class _Resumable:
    """Everything a checkpoint must restore for a resumed run to reach the same weights."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: _Ema | None
    scaler: torch.amp.GradScaler
    data: _TrainData

    def state_dicts(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema else None,
            "ema_updates": self.ema.updates if self.ema else 0,
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": self.data.generator.get_state(),
            "augment_rng": self.data.aug_generator.get_state(),
        }

    def load_state_dicts(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.module.load_state_dict(payload["ema"])
            self.ema.updates = int(payload["ema_updates"])
        self.scaler.load_state_dict(payload["scaler"])
        torch.set_rng_state(payload["torch_rng"])
        self.data.generator.set_state(payload["generator"])
        self.data.aug_generator.set_state(payload["augment_rng"])


class _Budget:
    """A wall-clock budget for the whole run: after each epoch the schedule is fitted to it
    (the cosine ends at the last epoch that fits at the mean epoch time so far), and no epoch
    starts that would overrun it, keeping time for the final scoring and the package."""

    def __init__(self, minutes: float | None, began: float) -> None:
        self.active = bool(minutes)
        self.seconds = (minutes or 0.0) * 60.0
        self.began = began
        self.epoch_seconds = 0.0  # mean of the epochs so far, training + validation
        self.eval_seconds = 0.0
        self.epochs = 0

    def record(self, epoch_seconds: float, eval_seconds: float) -> None:
        self.epochs += 1
        self.epoch_seconds += (epoch_seconds - self.epoch_seconds) / self.epochs
        self.eval_seconds = max(self.eval_seconds, eval_seconds)

    @property
    def reserve(self) -> float:
        """Time the end needs: validation twice (offsets), the test split, writing."""
        return 3.0 * self.eval_seconds + 5.0

    def exhausted(self) -> bool:
        if not self.active or not self.epochs:
            return False
        elapsed = time.time() - self.began
        return elapsed + self.epoch_seconds + self.reserve > self.seconds

    def plan(self, done: int, most: int, phase1: int) -> int:
        left = self.seconds - (time.time() - self.began) - self.reserve
        fits = done + max(0, math.floor(left / max(self.epoch_seconds, 1e-6)))
        return max(done, min(most, max(fits, phase1 + 1)))


class _Ema:
    """Exponential moving average of the weights and BatchNorm statistics.

    The decay warms up as ``(1 + t) / (10 + t)`` so that the random initial weights do not
    linger in the average of a short run.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_v, v in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_v.is_floating_point():
                ema_v.mul_(decay).add_(v.detach(), alpha=1.0 - decay)
            else:
                ema_v.copy_(v)


def card_codes(card: ModelCard) -> list[str]:
    return [label.code for label in card.labels]


def _thresholds(targets: np.ndarray, probs: np.ndarray, task: str) -> list[float]:
    # Multiclass decides by argmax; its thresholds are one-vs-rest F1 optima, for the record.
    return tune_thresholds(targets, probs)


def _config_identity(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(config).items() if k not in RESUMABLE}


@torch.inference_mode()
def predict_probs(
    model: nn.Module, loader: DataLoader, card: ModelCard, device: torch.device
) -> np.ndarray:
    """Probabilities for a loader of uint8 squares, normalised with the card's mean/std."""
    model.eval()
    out = []
    cuda = device.type == "cuda"
    for images, _ in loader:
        batch = normalise_batch(images.to(device, non_blocking=cuda), card.mean, card.std)
        if cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                "cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            ):
                logits = model(batch).float()
        else:
            logits = model(batch).float()
        probs = torch.softmax(logits, dim=1) if card.task == "multiclass" else torch.sigmoid(logits)
        out.append(probs.cpu().double().numpy())
    return np.concatenate(out) if out else np.zeros((0, card.num_outputs))


def evidence_line(metrics: dict[str, Any], codes: list[str], demonstration: bool) -> str:
    aucs = ", ".join(
        f"{code} {metrics['per_label'][code]['auc']:.2f}"
        for code in codes
        if metrics["per_label"][code]["auc"] is not None
    )
    ci = metrics.get("ci95", {}).get("macro_f1")
    interval = f", 95% CI {ci[0]:.2f}–{ci[1]:.2f}" if ci else ""
    line = (
        f"macro-F1 {metrics['macro_f1']:.2f}{interval} (majority baseline "
        f"{metrics['majority_baseline']['macro_f1']:.2f}), "
        f"AUC {aucs} on {metrics['n_images']} held-out eyes of {metrics.get('n_patients', '?')} patients"
    )
    point = binary_point(metrics)
    if point:
        line += (
            f"; at its threshold {point['threshold']:.2f}: AUC {point['auc']}{point['auc_ci']}, "
            f"sensitivity {point['sensitivity']:.2f}{point['sensitivity_ci']}, specificity "
            f"{point['specificity']:.2f}{point['specificity_ci']} (95% CIs by patient bootstrap)"
        )
    return ("Demonstration model: " + line + "; not for diagnosis") if demonstration else line


def binary_point(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """A one-label (binary) card's figures at its threshold, with their CIs as text."""
    if len(metrics["per_label"]) != 1:
        return None
    code, entry = next(iter(metrics["per_label"].items()))
    if entry.get("threshold") is None:
        return None
    ci = metrics.get("ci95", {}).get("per_label", {}).get(code, {})

    def shown(key: str) -> str:
        return f" ({ci[key][0]:.2f}–{ci[key][1]:.2f})" if ci.get(key) else ""

    return {
        "threshold": entry["threshold"],
        "auc": "—" if entry["auc"] is None else f"{entry['auc']:.2f}",
        "sensitivity": entry["sensitivity"],
        "specificity": entry["specificity"],
        **{f"{key}_ci": shown(key) for key in ("auc", "sensitivity", "specificity")},
    }


def evidence_line_zh(metrics: dict[str, Any], names: dict[str, str], demonstration: bool) -> str:
    """evidence_line for Chinese reports: the labels by their Chinese names, not their codes."""
    aucs = "、".join(
        f"{name} {metrics['per_label'][code]['auc']:.2f}"
        for code, name in names.items()
        if metrics["per_label"][code]["auc"] is not None
    )
    line = (
        f"在 {metrics.get('n_patients', '?')} 名患者的 {metrics['n_images']} 只留出眼上，"
        f"宏平均 F1 {metrics['macro_f1']:.2f}（多数类基线 "
        f"{metrics['majority_baseline']['macro_f1']:.2f}），AUC {aucs}"
    )
    point = binary_point(metrics)
    if point:
        line += (
            f"；阈值 {point['threshold']:.2f} 时 AUC {point['auc']}{point['auc_ci']}、灵敏度 "
            f"{point['sensitivity']:.2f}{point['sensitivity_ci']}、特异度 "
            f"{point['specificity']:.2f}{point['specificity_ci']}（95% 置信区间按患者自助法）"
        )
    return f"演示模型：{line}；不可用于诊断" if demonstration else line


# The default intended-use texts, in Chinese for Chinese reports.
INTENDED_USE_ZH = {"Demonstration — not for diagnosis.": "仅用于演示，不可用于诊断。"}


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)

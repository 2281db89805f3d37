"""Training end to end on a tiny synthetic dataset: package, card, resume, command, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import load_file

from ai_engine.inference.package import ModelPackage
from ai_engine.training.trainer import Trainer, TrainingError, lr_at

from .conftest import fast_config


def test_train_model_command_writes_a_loadable_package_with_metrics(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pkg"
    call_command(
        "train_model",
        "--data", str(dataset),
        "--task", "multiclass",
        "--labels", "normal,cataract,glaucoma",
        "--arch", "test_resnet",
        "--input-size", "32",
        "--epochs", "2",
        "--phase1-epochs", "1",
        "--lr2", "1e-2",
        "--batch-size", "4",
        "--val-fraction", "0.25",
        "--test-fraction", "0.25",
        "--device", "cpu",
        "--no-progress",
        "--cache-dir", str(tmp_path / "cache"),
        "--out", str(out),
        stdout=open(tmp_path / "log.txt", "w"),  # noqa: SIM115
    )  # fmt: skip
    package = ModelPackage.load(out, "cpu")
    card = package.card
    assert [label.code for label in card.labels] == ["N", "C", "G"]
    assert card.demonstration is True
    # At 32 px layer4's map is 1×1, so the CAM layers are the two stages before it.
    assert card.cam.target_layers == ("layer3", "layer2")
    validation = card.validation
    assert validation["split"] == "test"
    assert validation["n_images"] == 6 and validation["n_per_label"] == {"N": 2, "C": 2, "G": 2}
    assert set(validation["per_label"]["G"]) >= {
        "precision",
        "recall",
        "f1",
        "auc",
        "sensitivity",
        "specificity",
    }
    assert len(validation["confusion_matrix"]["matrix"]) == 3
    assert set(validation["class_offsets"]) == {"N", "C", "G"}
    assert validation["majority_baseline"]["macro_f1"] == pytest.approx((2 * 2 / (2 * 2 + 4)) / 3)
    assert card.evidence.startswith("Demonstration model: macro-F1")
    assert card.evidence_en == card.evidence
    assert card.evidence_zh.startswith("演示模型：在 ")
    assert "宏平均 F1" in card.evidence_zh and card.evidence_zh.endswith("；不可用于诊断")
    assert card.intended_use_zh == "仅用于演示，不可用于诊断。"
    assert "Reproduce with: python manage.py train_model --data" in card.training_data
    assert "not redistributable" in card.training_data
    training = json.loads((out / "training.json").read_text())
    assert [h["phase"] for h in training["history"]] == [1, 2]
    assert "--arch test_resnet" in training["command"]
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"])
    assert not (out / "checkpoint.pt").exists()
    assert list((tmp_path / "cache").glob("squares-32-*.npy"))
    weights = load_file(str(out / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in weights.values() if t.is_floating_point())


@pytest.mark.parametrize(
    ("task", "labels", "extra"),
    [
        ("multilabel", "cataract,glaucoma", {"loss": "bce", "oversample": False}),
        ("binary", "glaucoma", {"loss": "focal"}),
    ],
)
def test_multilabel_and_binary_tasks(dataset: Path, tmp_path: Path, task, labels, extra) -> None:
    config = fast_config(
        dataset, tmp_path / task, task=task, labels=labels, epochs=1, phase1_epochs=0, **extra
    )
    result = Trainer(config, log=lambda _: None).run()
    card = ModelPackage.load(result.package, "cpu").card
    assert card.task == task
    assert card.num_outputs == (1 if task == "binary" else 2)
    assert all(0.0 < label.threshold < 1.0 for label in card.labels)
    assert (
        card.validation["per_label"][card.labels[0].code]["threshold"] == card.labels[0].threshold
    )


def test_resume_continues_to_the_same_weights(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    full = Trainer(
        fast_config(dataset, tmp_path / "full", epochs=3, ema=0.9), log=lambda _: None
    ).run()

    calls = {"n": 0}
    original = Trainer._train_epoch

    def crash_in_epoch_3(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(fast_config(dataset, tmp_path / "cut", epochs=3, ema=0.9), log=lambda _: None).run()
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    logged: list[str] = []
    resumed = Trainer(
        fast_config(dataset, tmp_path / "cut", epochs=3, ema=0.9, resume=True), log=logged.append
    ).run()
    assert any("resumed from" in line and "after epoch 2" in line for line in logged)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert [h["val_macro_f1"] for h in resumed.history] == [h["val_macro_f1"] for h in full.history]
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_settings(dataset: Path, tmp_path: Path) -> None:
    Trainer(
        fast_config(dataset, tmp_path / "p", epochs=2, keep_checkpoint=True), log=lambda _: None
    ).run()
    with pytest.raises(TrainingError, match="other settings: lr2"):
        Trainer(
            fast_config(dataset, tmp_path / "p", epochs=2, lr2=0.5, resume=True), log=lambda _: None
        ).run()
    with pytest.raises(TrainingError, match="no checkpoint"):
        Trainer(fast_config(dataset, tmp_path / "q", resume=True), log=lambda _: None).run()


def test_learning_rate_schedule_two_phases() -> None:
    config = fast_config(
        Path("x"), Path("y"), epochs=4, phase1_epochs=1, lr1=1e-3, lr2=1e-4, warmup_epochs=0
    )
    steps = 10
    assert lr_at(0, steps, config) == pytest.approx(1e-3)  # phase 1 starts at lr1
    assert lr_at(9, steps, config) < 1e-4  # and decays to ~0 by its end
    assert lr_at(10, steps, config) == pytest.approx(1e-4)  # phase 2 restarts at lr2
    assert lr_at(25, steps, config) == pytest.approx(1e-4 * 0.5 * (1 + np.cos(np.pi * 15 / 30)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"arch": "resnet_made_up"}, "unknown timm architecture 'resnet_made_up'"),
        ({"labels": "normal,drusen"}, "label mismatch: no sample is labelled"),
        ({"data": "nowhere.csv"}, "no such file or folder"),
        ({"loss": "ce", "task": "multilabel"}, "ce needs --task multiclass"),
        ({"epochs": 2, "phase1_epochs": 2}, "--phase1-epochs between 0"),
    ],
)
def test_train_model_errors(dataset: Path, tmp_path: Path, options, message) -> None:
    args = {
        "data": str(dataset),
        "labels": "normal,cataract,glaucoma",
        "arch": "test_resnet",
        "input_size": 32,
        "epochs": 1,
        "phase1_epochs": 0,
        "batch_size": 4,
        "device": "cpu",
        "no_progress": True,
        "out": str(tmp_path / "pkg"),
        "cache_dir": str(tmp_path / "cache"),
    }
    args.update(options)
    with pytest.raises(CommandError, match=message):
        call_command("train_model", stdout=open(tmp_path / "log.txt", "w"), **args)  # noqa: SIM115

"""Pretrained starts (folded BatchNorm), device augmentation, the wall-clock budget, the JPEG
training cache and per-photo predictions."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from django.core.management import CommandError, call_command
from PIL import Image
from safetensors.torch import save_file

from ai_engine.inference.package import ModelPackage
from ai_engine.training import nets
from ai_engine.training.augment import TensorAugment, mix_batch

from .test_evaluate import constant_package

REPO_ROOT = Path(__file__).resolve().parents[3]
PRETRAINED = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/pretrained/mobilenetv2_100_imagenet.safetensors"
)


def folded_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A test_resnet with 10 outputs whose BatchNorm is folded like a converted TFLite net:
    weight 1, running mean 0, running variance 1 − eps, the bias carrying the shift."""
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=10)
    for norm in nets.batchnorms(model):
        with torch.no_grad():
            norm.weight.fill_(1.0)
            norm.bias.normal_(0.0, 0.1)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
    state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    save_file(
        state,
        str(path),
        metadata={
            "arch": "test_resnet",
            "mean": "0.5,0.5,0.5",
            "std": "0.50196,0.50196,0.50196",
            "timm_kwargs": "{}",
            "source": "unit test (Apache-2.0)",
        },
    )
    return state


def test_init_loads_all_but_the_classifier_and_recalibration_keeps_eval_outputs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "folded.safetensors"
    saved = folded_checkpoint(path)
    init = nets.read_init(path)
    assert (init.arch, init.mean, init.std) == ("test_resnet", [0.5] * 3, [0.50196] * 3)
    assert "unit test (Apache-2.0)" in init.provenance()
    model = nets.create("test_resnet", 3, init.kwargs)
    nets.load_weights(model, init.state, strict_head=False)
    own = model.state_dict()
    assert not torch.equal(own["fc.weight"][:3], saved["fc.weight"][:3].float())  # fresh head
    assert torch.equal(own["conv1.0.weight"], saved["conv1.0.weight"])
    torch.manual_seed(1)
    batches = [torch.randn(8, 3, 32, 32) for _ in range(3)]
    model.eval()
    with torch.no_grad():
        before = model(torch.cat(batches))
    assert nets.recalibrate_batchnorm(model, batches) == 24
    with torch.no_grad():
        after = model(torch.cat(batches))
        model.train()
        batch_mode = model(torch.cat(batches))  # batch statistics ≈ the recalibrated ones
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    assert (batch_mode - before).abs().max() < 0.05 * before.abs().max()
    norm = nets.batchnorms(model)[0]
    assert norm.running_mean.abs().max() > 0.01 and not torch.allclose(
        norm.weight, torch.ones_like(norm.weight)
    )


@pytest.mark.skipif(not PRETRAINED.is_file(), reason="../shared/data/pretrained not present")
def test_the_imagenet_mobilenetv2_loads_with_its_metadata() -> None:
    init = nets.read_init(PRETRAINED)
    assert init.arch == "mobilenetv2_100" and init.kwargs == {"pad_type": "same"}
    assert init.mean == [0.5, 0.5, 0.5] and init.std == [0.50196] * 3
    assert "Apache-2.0" in init.source
    model = nets.create("mobilenetv2_100", 3, init.kwargs)
    nets.load_weights(model, init.state, strict_head=False)  # only the classifier is new
    with pytest.raises(nets.NetError, match="missing keys: classifier"):
        nets.load_weights(
            model, {k: v for k, v in init.state.items() if k != "classifier.bias"}, strict_head=True
        )


def test_tensor_augment_is_seeded_and_keeps_the_surround_black() -> None:
    yy, xx = np.mgrid[:32, :32]
    disc = ((xx - 15.5) ** 2 + (yy - 15.5) ** 2 < 12**2).astype(np.uint8)
    batch = torch.from_numpy(np.stack([disc * 150] * 3))[None].repeat(4, 1, 1, 1)
    augment = TensorAugment()
    a = augment(batch, torch.Generator().manual_seed(3))
    b = augment(batch, torch.Generator().manual_seed(3))
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a[:, :, 0, 0].abs().max()) == 0.0  # corners stay black
    assert 0.2 < float(a[:, :, 16, 16].mean()) < 1.0
    targets = torch.eye(3)[[0, 1, 2, 0]]
    mixed, first, partner, lam = mix_batch(
        a, targets, mixup=0.4, cutmix=0.0, generator=torch.Generator().manual_seed(0)
    )
    assert 0.0 <= lam <= 1.0 and torch.equal(first, targets)
    assert sorted(partner.argmax(1).tolist()) == sorted(targets.argmax(1).tolist())
    same = mix_batch(a, targets, mixup=0, cutmix=0, generator=torch.Generator())
    assert same[0] is a and same[3] == 1.0


def test_budget_ends_the_run_with_a_valid_package(dataset: Path, tmp_path: Path) -> None:
    init = tmp_path / "folded.safetensors"
    folded_checkpoint(init)
    out = tmp_path / "pkg"
    log = tmp_path / "log.txt"
    call_command(
        "train_model", "--data", str(dataset), "--labels", "normal,cataract,glaucoma",
        "--arch", "test_resnet", "--init", str(init), "--input-size", "32",
        "--epochs", "50", "--phase1-epochs", "0", "--lr2", "1e-3", "--batch-size", "4",
        "--budget-minutes", "0.001", "--mixup", "0.2", "--cutmix", "1.0", "--ema", "0.9",
        "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu",
        "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
        stdout=log.open("w"),
    )  # fmt: skip
    text = log.read_text()
    assert "BatchNorm recalibrated on 12 training photos" in text
    assert "budget: 0.001 min fits 1 epochs" in text
    training = json.loads((out / "training.json").read_text())
    assert [h["epoch"] for h in training["history"]] == [1]
    card = ModelPackage.load(out, "cpu").card
    assert card.mean == (0.5, 0.5, 0.5)  # from the init file's metadata
    assert "initialised from folded.safetensors" in card.training_data
    assert "unit test (Apache-2.0)" in card.training_data
    assert "budget fitted 1 epochs (1 run)" in card.training_data
    ci = card.validation["ci95"]
    assert ci["unit"] == "patient" and ci["rounds"] == 1000
    assert ci["macro_f1"][0] <= card.validation["macro_f1"] <= ci["macro_f1"][1]
    assert f"95% CI {ci['macro_f1'][0]:.2f}–{ci['macro_f1'][1]:.2f}" in card.evidence
    call_command("validate_model", str(out), stdout=(tmp_path / "validate.txt").open("w"))
    assert "pkg 0.1.0 is valid." in (tmp_path / "validate.txt").read_text()


def test_init_of_another_architecture_is_refused(dataset: Path, tmp_path: Path) -> None:
    init = tmp_path / "folded.safetensors"
    folded_checkpoint(init)
    with pytest.raises(CommandError, match="holds test_resnet weights; pass --arch test_resnet"):
        call_command(
            "train_model", "--data", str(dataset), "--arch", "resnet10t", "--init", str(init),
            "--out", str(tmp_path / "pkg"), "--device", "cpu", "--no-progress",
            stdout=(tmp_path / "log.txt").open("w"),
        )  # fmt: skip
    assert not (tmp_path / "pkg").exists()


def test_build_training_cache_writes_crops_and_a_manifest_train_model_reads(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cache-48"
    call_command(
        "build_training_cache", str(dataset), "--size", "48", "--out", str(out),
        "--where", "dataset=synthetic", stdout=(tmp_path / "log.txt").open("w"),
    )  # fmt: skip
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    first = rows[0]
    assert first["file"] == "images/images/normal/0_left.jpg"
    assert (first["original_file"], first["patient"], first["label"]) == (
        "images/normal/0_left.jpg",
        "pt-0",
        "normal",
    )
    with Image.open(out / first["file"]) as crop:
        assert crop.size == (48, 48) and crop.format == "JPEG"
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["images"] == 24 and summary["size"] == 48 and summary["failed"] == []
    from ai_engine.training.data import load_dataset
    from ai_engine.training.labels import parse_labels

    labelled = load_dataset(out, task="multiclass", labels=parse_labels("normal,cataract,glaucoma"))
    assert labelled.counts() == {"N": 8, "C": 8, "G": 8}
    assert {s.patient for s in labelled.samples} == {f"pt-{p}" for p in range(12)}
    with pytest.raises(CommandError, match="no rows with"):
        call_command(
            "build_training_cache", str(dataset), "--out", str(tmp_path / "x"),
            "--where", "dataset=none", stdout=(tmp_path / "log.txt").open("w"),
        )  # fmt: skip


def test_evaluate_writes_predictions_intervals_sources_and_a_cam_sheet(
    dataset: Path, tmp_path: Path
) -> None:
    package = constant_package(tmp_path / "always-g", [0.0, 0.0, 2.0])
    out = tmp_path / "report"
    predictions = tmp_path / "predictions.csv"
    sheet = tmp_path / "sheet.png"
    call_command(
        "evaluate_model", str(package), str(dataset), str(dataset), "--out", str(out),
        "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--bootstrap", "200",
        "--predictions", str(predictions), "--cam-sheet", str(sheet), "--cam-per-label", "3",
        stdout=(tmp_path / "log.txt").open("w"),
    )  # fmt: skip
    with predictions.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 48  # the same 24 photos listed twice, pooled
    assert list(rows[0]) == [
        "file", "patient", "eye", "source", "true_label", "p_N", "p_C", "p_G", "decision",
    ]  # fmt: skip
    p_g = np.exp(2.0) / (np.exp(2.0) + 2.0)
    assert {r["decision"] for r in rows} == {"G"}
    assert all(float(r["p_G"]) == pytest.approx(p_g, abs=1e-6) for r in rows)
    codes = {"normal": "N", "cataract": "C", "glaucoma": "G"}
    assert all(r["true_label"] == codes[Path(r["file"]).parent.name] for r in rows)
    assert {r["source"] for r in rows} == {"labels.csv: synthetic"}
    report = json.loads((out / "evaluation.json").read_text())["packages"][0]
    metrics = report["metrics"]
    assert metrics["n_images"] == 48
    low, high = metrics["ci95"]["macro_f1"]
    assert metrics["macro_f1"] == pytest.approx(1 / 6)
    assert low < metrics["macro_f1"] < high
    assert metrics["ci95"]["per_label"]["G"]["specificity"] == [0.0, 0.0]
    assert metrics["ci95"]["per_label"]["G"]["sensitivity"] == [1.0, 1.0]
    assert metrics["ci95"]["per_label"]["N"]["f1"] == [0.0, 0.0]
    assert set(report["per_source"]) == {"labels.csv: synthetic"}
    assert report["per_source"]["labels.csv: synthetic"]["n_images"] == 48
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.width == 5 * 2 * 160
        assert image.height == 3 * (22 + 160)  # a header and one row of 3 pairs per label
    log = (tmp_path / "log.txt").read_text()
    assert "Wrote 48 predictions" in log and "Wrote the CAM sheet (N 3, C 3, G 3)" in log
    assert f"95% CI (200 bootstrap rounds over patients): macro-F1 {low:.3f}–{high:.3f}" in log


def test_train_jobs_runs_jobs_side_by_side_and_prints_one_table(
    dataset: Path, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(
        "# two recipes on the same photos\n"
        "tiny-a: --lr2 1e-2\n"
        "tiny-b: --lr2 1e-3 --augment-missing-flag\n"
        "tiny-c: --lr2 1e-3 --no-augment\n"
    )
    common = (
        f"--data {dataset} --labels normal,cataract,glaucoma --arch test_resnet --input-size 32 "
        f"--epochs 1 --phase1-epochs 0 --batch-size 4 --val-fraction 0.25 --test-fraction 0.25 "
        f"--device cpu --threads 1 --cache-dir {tmp_path / 'cache'}"
    )
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "train_jobs.py"), str(jobs),
         "--out", str(tmp_path / "runs"), "--common", common, "--parallel", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one job failed
    lines = (tmp_path / "runs" / "table.md").read_text().splitlines()
    assert lines[0] == (
        "| job | status | arch | px | init | epochs | val F1 | test macro-F1 | N F1 | N AUC "
        "| C F1 | C AUC | G F1 | G AUC | n | min |"
    )
    assert lines[2].startswith("| tiny-a | ok |") and lines[4].startswith("| tiny-c | ok |")
    assert lines[3].startswith("| tiny-b | failed (2), see tiny-b.log |")
    assert (
        "unrecognized arguments: --augment-missing-flag"
        in (tmp_path / "runs" / "tiny-b.log").read_text()
    )
    assert ModelPackage.load(tmp_path / "runs" / "tiny-c", "cpu").card.name == "tiny-c"
    assert "\n".join(lines) in done.stdout


def test_a_resumed_run_may_get_a_new_budget(dataset: Path, tmp_path: Path) -> None:
    from ai_engine.training.trainer import Trainer

    from .conftest import fast_config

    out = tmp_path / "p"
    Trainer(fast_config(dataset, out, epochs=2, keep_checkpoint=True), log=lambda _: None).run()
    # A checkpoint written before budgets were resumable carries the budget in its settings.
    payload = torch.load(str(out / "checkpoint.pt"), weights_only=True)
    payload["config"]["budget_minutes"] = 85.0
    torch.save(payload, str(out / "checkpoint.pt"))
    logged: list[str] = []
    result = Trainer(
        fast_config(dataset, out, epochs=2, resume=True, budget_minutes=10.0), log=logged.append
    ).run()
    assert any("after epoch 2" in line for line in logged)
    assert [h["epoch"] for h in result.history] == [1, 2]

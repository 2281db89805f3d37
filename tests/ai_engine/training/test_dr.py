"""DR grading end to end on a tiny synthetic ICDR dataset: the operating point chosen on
validation, the card's figures and evidence, and the commands that recompute them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ai_engine.inference.package import ModelPackage
from ai_engine.training.evaluate import DatasetSpec, evaluate_package
from ai_engine.training.grading import choose_operating_point
from ai_engine.training.trainer import Trainer

from .conftest import fast_config

DR_LABELS = "dr_grade_0,dr_grade_1,dr_grade_2,dr_grade_3,dr_grade_4"


@pytest.fixture(scope="module")
def dr_package(dr_dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dr-run") / "ophai-dr"
    config = fast_config(
        dr_dataset, out, labels=DR_LABELS, val_fraction=0.25, test_fraction=0.25, seed=1
    )
    Trainer(config, log=lambda _: None).run()
    return out


def test_training_writes_the_operating_point_chosen_on_validation(
    dr_package: Path, dr_dataset: Path
) -> None:
    package = ModelPackage.load(dr_package, "cpu")
    grading = package.card.dr_grading
    assert grading["scheme"] == "icdr_0_4"
    point = grading["operating_point"]
    assert point["chosen_on"] == "validation" and point["sensitivity_target"] == 0.9
    split = json.loads((dr_package / "split.json").read_text())
    assert point["n_images"] == 2 * len(split["validation"])
    # The deployed package on its own validation patients gives back the same threshold.
    scored = evaluate_package(package, DatasetSpec(str(dr_dataset), split="validation"), rounds=10)
    threshold, again = choose_operating_point(scored.targets, scored.probs, 2, 0.9)
    assert grading["referable_threshold"] == pytest.approx(threshold, abs=2e-4)
    assert again["sensitivity"] >= 0.9
    validation = package.card.validation
    figures = validation["dr_grading"]
    assert validation["split"] == "test"
    assert figures["n_images"] == 2 * len(split["test"])
    assert figures["referable"]["threshold"] == grading["referable_threshold"]
    assert set(figures["ci95"]) >= {"qwk", "referable", "vision_threatening"}
    assert len(figures["confusion_matrix"]["matrix"]) == 5
    evidence = package.card.evidence_text("en")
    assert evidence.startswith("Demonstration model: referable DR (grade ≥ 2) AUC ")
    assert f"at P(referable) ≥ {grading['referable_threshold']:.4g}, chosen on" in evidence
    assert "quadratic weighted kappa" in evidence and "macro-F1" in evidence
    assert package.card.evidence_zh.startswith("演示模型：在 ")
    assert "需转诊糖尿病视网膜病变（≥ 2 级）AUC" in package.card.evidence_zh
    assert "二次加权 kappa" in package.card.evidence_zh


def test_an_unreachable_validation_split_leaves_the_argmax_rule(tmp_path: Path) -> None:
    from ai_engine.training.grading import choose_operating_point as choose

    with pytest.raises(ValueError, match="no positive"):
        choose(np.eye(5)[[0, 1, 0, 1]], np.full((4, 5), 0.2), 2)


def run_command(name: str, *args: str, log: Path) -> str:
    from django.core.management import call_command

    with log.open("w", encoding="utf-8") as handle:
        call_command(name, *args, stdout=handle)
    return log.read_text(encoding="utf-8")


def test_evaluate_model_reproduces_the_cards_dr_figures_with_predictions(
    dr_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    card = ModelPackage.load(dr_package, "cpu").card
    threshold = card.dr_grading["referable_threshold"]
    predictions = tmp_path / "predictions.csv"
    printed = run_command(
        "evaluate_model", str(dr_package), str(dr_dataset), "--split", "test",
        "--out", str(tmp_path / "report"), "--device", "cpu", "--bootstrap", "50",
        "--cache-dir", str(tmp_path / "cache"), "--predictions", str(predictions),
        log=tmp_path / "log.txt",
    )  # fmt: skip
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())["packages"][0]
    figures = report["metrics"]["dr_grading"]
    on_card = card.validation["dr_grading"]
    assert figures["n_images"] == on_card["n_images"]
    assert figures["referable"]["threshold"] == threshold
    for key in ("tp", "fp", "fn", "tn"):
        assert figures["referable"][key] == on_card["referable"][key]
    assert figures["qwk"] == pytest.approx(on_card["qwk"], abs=1e-9)
    assert figures["confusion_matrix"] == on_card["confusion_matrix"]
    assert set(report["per_source"]) == {"site-a", "site-b"}
    assert all("qwk" in g["dr_grading"] for g in report["per_source"].values())
    assert "DR: QWK" in printed and "referable (grade >= 2" in printed
    assert f"at P(grade >= 2) >= {threshold}: sensitivity" in printed
    import csv

    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == figures["n_images"]
    for row in rows:
        p_ref = sum(float(row[f"p_dr{g}"]) for g in (2, 3, 4))
        assert float(row["p_referable"]) == pytest.approx(p_ref, abs=2e-6)
        assert row["referable"] == ("yes" if float(row["p_referable"]) >= threshold else "no")
        assert row["grade"] == str(max(range(5), key=lambda g: float(row[f"p_dr{g}"])))
    assert sum(row["referable"] == "yes" for row in rows) == (
        figures["referable"]["tp"] + figures["referable"]["fp"]
    )


def test_set_operating_point_rewrites_the_card_and_keeps_the_weights(
    dr_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import shutil

    package_dir = tmp_path / "ophai-dr"
    shutil.copytree(dr_package, package_dir)
    weights = (package_dir / "model.safetensors").read_bytes()
    before = json.loads((package_dir / "model.json").read_text())
    common = ["--device", "cpu", "--bootstrap", "50", "--cache-dir", str(tmp_path / "cache")]
    printed = run_command(
        "set_operating_point", str(package_dir), "--sensitivity", "1.0", "--dry-run", *common,
        log=tmp_path / "dry.txt",
    )  # fmt: skip
    assert "dry run: model.json not written" in printed
    assert json.loads((package_dir / "model.json").read_text()) == before
    for _ in range(2):  # twice: the second run changes nothing
        printed = run_command(
            "set_operating_point", str(package_dir), "--sensitivity", "1.0", *common,
            log=tmp_path / "log.txt",
        )  # fmt: skip
    assert "weights unchanged, sha256 checked" in printed
    assert (package_dir / "model.safetensors").read_bytes() == weights
    package = ModelPackage.load(package_dir, "cpu")
    assert package.card.weights.sha256 == before["weights"]["sha256"]
    grading = package.card.dr_grading
    assert grading["operating_point"]["sensitivity_target"] == 1.0
    assert grading["operating_point"]["sensitivity"] == 1.0
    validation = evaluate_package(
        package, DatasetSpec(str(dr_dataset), split="validation"), rounds=5
    )
    threshold, _ = choose_operating_point(validation.targets, validation.probs, 2, 1.0)
    assert grading["referable_threshold"] == threshold
    card = package.card
    assert card.validation["dr_grading"]["referable"]["threshold"] == threshold
    assert card.validation["selection"].count("referable operating point chosen on") == 1
    assert card.validation["per_label"] == before["validation"]["per_label"]
    assert "for sensitivity ≥ 1.00" in card.evidence_en and card.evidence == card.evidence_en
    assert "按灵敏度 ≥ 1.00 选定" in card.evidence_zh


def test_set_operating_point_refuses_a_package_without_dr_grading(
    dataset: Path, tmp_path: Path
) -> None:
    from django.core.management import CommandError

    from .test_evaluate import constant_package

    package = constant_package(tmp_path / "pkg", [0.0, 0.0, 0.0])
    with pytest.raises(CommandError, match="has no dr_grading block"):
        run_command(
            "set_operating_point", str(package), "--data", str(dataset), "--device", "cpu",
            log=tmp_path / "log.txt",
        )  # fmt: skip
    with pytest.raises(CommandError, match="has no training.json; pass --data"):
        run_command(
            "set_operating_point", str(package), "--device", "cpu", log=tmp_path / "log.txt"
        )


def test_grade_folder_prints_the_grade_spread_of_unlabelled_photos(
    dr_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import shutil

    from django.core.management import CommandError

    folder = tmp_path / "highres"
    folder.mkdir()
    for p in range(5):  # one eye of each grade
        shutil.copy(dr_dataset.parent / f"images/{p}_left.jpg", folder / f"{p + 1}.jpg")
    (folder / "6.jpg").write_bytes(b"not a photo")
    (folder / "notes.txt").write_text("ignored")
    printed = run_command(
        "grade_folder", str(dr_package), str(folder), "--device", "cpu",
        "--csv", str(tmp_path / "grades.csv"), log=tmp_path / "log.txt",
    )  # fmt: skip
    assert "5 photos graded, 1 unreadable" in printed and "6.jpg: not graded" in printed
    assert "grades: dr0 " in printed and "P(referable): min " in printed
    lines = (tmp_path / "grades.csv").read_text().splitlines()
    assert lines[0].endswith("grade,p_referable,referable") and len(lines) == 6
    assert [line.split(",")[0] for line in lines[1:]] == [f"{n}.jpg" for n in range(1, 6)]
    with pytest.raises(CommandError, match="no such folder"):
        run_command("grade_folder", str(dr_package), str(tmp_path / "none"), log=tmp_path / "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no photos"):
        run_command("grade_folder", str(dr_package), str(tmp_path / "empty"), log=tmp_path / "x")


@pytest.fixture(scope="module")
def dme_package(dr_dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dme-run") / "ophai-dme"
    config = fast_config(
        dr_dataset, out, task="binary", labels="dme", label_column="dme", positive=["1"],
        loss="bce", val_fraction=0.25, test_fraction=0.25, seed=1,
    )  # fmt: skip
    Trainer(config, log=lambda _: None).run()
    return out


def test_binary_card_states_sensitivity_and_specificity_with_intervals(dme_package: Path) -> None:
    card = ModelPackage.load(dme_package, "cpu").card
    assert [label.code for label in card.labels] == ["DME"]
    assert "; at its threshold " in card.evidence_en and "specificity" in card.evidence_en
    assert "95% CIs by patient bootstrap" in card.evidence_en
    assert "灵敏度" in card.evidence_zh and "特异度" in card.evidence_zh


def test_dme_within_known_dr_rows_and_per_dr_value(
    dme_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import csv

    printed = run_command(
        "evaluate_model", str(dme_package), str(dr_dataset), "--label-column", "dme",
        "--positive", "1", "--where", "dr!=unknown", "--group-by", "dr", "--split", "test",
        "--out", str(tmp_path / "report"), "--device", "cpu", "--bootstrap", "20",
        log=tmp_path / "log.txt",
    )  # fmt: skip
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())["packages"][0]
    test_patients = set(json.loads((dme_package / "split.json").read_text())["test"])
    rows = list(csv.DictReader(dr_dataset.open()))
    known = [r for r in rows if r["patient"] in test_patients and r["dr"] != "unknown"]
    assert report["metrics"]["n_images"] == len(known)
    groups = report["per_value"]["groups"]
    assert report["per_value"]["column"] == "dr"
    assert set(groups) == {r["dr"] for r in known}
    assert sum(g["n_images"] for g in groups.values()) == len(known)
    assert groups["pdr"]["n_per_label"]["DME"] == groups["pdr"]["n_images"]
    assert groups["none"]["per_label"]["DME"]["mean_p_positive"] is None
    assert "dr=pdr:" in printed and "mean p (positives" in printed
    assert "(dr!=unknown)" in report["dataset"]["description"]
    ci = report["metrics"]["ci95"]["per_label"]["DME"]
    assert (
        f"sensitivity {ci['sensitivity'][0]:.3f}–{ci['sensitivity'][1]:.3f}, specificity "
        f"{ci['specificity'][0]:.3f}–{ci['specificity'][1]:.3f}" in printed
    )


def test_evaluate_model_takes_one_label_column_per_dataset(
    dme_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import csv

    from django.core.management import CommandError

    camera = tmp_path / "camera"
    rows = list(csv.DictReader(dr_dataset.open()))
    (camera / "images").mkdir(parents=True)
    with (camera / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "dataset", "patient", "maculopathy"])
        writer.writeheader()
        for row in rows[:10]:
            (camera / row["file"]).write_bytes((dr_dataset.parent / row["file"]).read_bytes())
            writer.writerow(
                {
                    "file": row["file"],
                    "dataset": "camera",
                    "patient": "cam-" + row["patient"],
                    "maculopathy": "yes" if row["dme"] == "1" else "no",
                }
            )
    run_command(
        "evaluate_model", str(dme_package), str(dr_dataset), str(camera / "labels.csv"),
        "--label-column", "dme,maculopathy", "--positive", "1,yes",
        "--out", str(tmp_path / "report"), "--device", "cpu", "--bootstrap", "20",
        log=tmp_path / "log.txt",
    )  # fmt: skip
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())["packages"][0]
    assert report["metrics"]["n_images"] == len(rows) + 10
    camera_group = report["per_source"]["camera/labels.csv: camera"]
    assert camera_group["n_per_label"]["DME"] == sum(r["dme"] == "1" for r in rows[:10])
    with pytest.raises(CommandError, match="3 label columns for 2 datasets"):
        run_command(
            "evaluate_model", str(dme_package), str(dr_dataset), str(camera / "labels.csv"),
            "--label-column", "dme,maculopathy,x", "--out", str(tmp_path / "r2"),
            log=tmp_path / "log.txt",
        )  # fmt: skip


def load_train_jobs():
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "bench" / "train_jobs.py"
    spec = importlib.util.spec_from_file_location("train_jobs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("jobs", ["dr-gpu.txt", "dme-gpu.txt"])
def test_the_gpu_job_files_parse_as_train_model_options(jobs: str) -> None:
    import argparse

    from ai_engine.training.cli import add_train_arguments

    root = Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_train_arguments(parser, "var/cache")
    read = load_train_jobs().read_jobs(root / "bench" / "jobs" / jobs)
    sizes = set()
    for _name, args in read:
        options = parser.parse_args(["--data", "x.csv", "--out", "y", *args])
        sizes.add(options.input_size)
    assert sizes >= ({256, 384, 512} if jobs.startswith("dr") else {384, 512})
    assert "--sensitivity-target 0.9" in (root / "scripts" / "gpu_recipe_dr.sh").read_text()


def test_the_jobs_table_shows_the_dr_screening_figures(dr_package: Path) -> None:
    cells = load_train_jobs().row(dr_package.name, dr_package.parent, 0, 1.0)
    card = json.loads((dr_package / "model.json").read_text())
    assert cells["threshold"] == str(card["dr_grading"]["referable_threshold"])
    assert cells["QWK"].startswith(f"{card['validation']['dr_grading']['qwk']:.3f} [")
    assert {"referable AUC", "sens", "spec", "VT AUC"} <= set(cells)
    assert "dr0 F1" not in cells


def test_per_value_figures_say_whether_the_model_tells_a_subset_apart(
    dme_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import csv

    from ai_engine.training.metrics import roc_auc

    printed = run_command(
        "evaluate_model", str(dme_package), str(dr_dataset), "--label-column", "dme",
        "--positive", "1", "--group-by", "dr", "--split", "test", "--bootstrap", "20",
        "--out", str(tmp_path / "report"), "--device", "cpu",
        "--predictions", str(tmp_path / "p.csv"),
        log=tmp_path / "log.txt",
    )  # fmt: skip
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())["packages"][0]
    dr_of = {str(dr_dataset.parent / r["file"]): r["dr"] for r in csv.DictReader(dr_dataset.open())}
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    positives = [r for r in rows if r["true_label"] == "DME"]
    member = np.array([dr_of[r["file"]] == "unknown" for r in positives])
    p = np.array([float(r["p_DME"]) for r in positives])
    unknown = report["per_value"]["groups"]["unknown"]["per_label"]["DME"]
    assert unknown["subset_auc"]["positives"] == pytest.approx(roc_auc(member, p), abs=1e-5)
    # No negative has dr=unknown here: nothing to compare among negatives.
    assert unknown["subset_auc"]["negatives"] is None
    assert "AUC of this value against the others (positives " in printed


def test_dme_subset_summary_prints_the_cards_sentences(
    dme_package: Path, dr_dataset: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    common = ["--label-column", "dme", "--positive", "1", "--split", "test", "--bootstrap", "20"]
    common += ["--device", "cpu"]
    for name, extra in (
        ("by-dr", ["--group-by", "dr"]),
        ("known-dr", ["--where", "dr!=unknown"]),
        ("dr-camera", []),
    ):
        run_command(
            "evaluate_model", str(dme_package), str(dr_dataset), *common, *extra,
            "--out", str(tmp_path / name), log=tmp_path / "log.txt",
        )  # fmt: skip
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "dme_subset_summary.py"), str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    known = json.loads((tmp_path / "known-dr" / "evaluation.json").read_text())["packages"][0]
    n = known["metrics"]["n_images"]
    english, chinese = done.stdout.strip().splitlines()
    assert english.startswith("DME AUC within dme/ test rows whose DR grade is known ")
    assert f"DME of {n} eyes" in english and "(0.5 = the subset is not recognised)" in english
    assert chinese.startswith("dme/ 测试集中 DR 分级已知的眼上 DME AUC ")
    missing = subprocess.run(
        [sys.executable, str(root / "scripts" / "dme_subset_summary.py"), str(tmp_path / "none")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "cannot read the reports" in missing.stderr

"""Retraining from a package (--init PACKAGE) on clinic data mixed with public data (--mix)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ai_engine.inference.card import load_card
from ai_engine.inference.package import file_sha256
from ai_engine.training.data import DatasetError, load_datasets
from ai_engine.training.labels import parse_labels
from ai_engine.training.lineage import (
    apply_mix,
    learning_fields,
    parse_mix,
    read_parent,
    source_counts,
)
from ai_engine.training.trainer import Trainer

from .conftest import fast_config, write_dataset


def as_clinic_export(root: Path, patients: int) -> Path:
    """A synthetic dataset relabelled as a clinic export (dataset=clinic, hashed patient keys)."""
    labels = write_dataset(root, patients=patients)
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["dataset"] = "clinic"
        row["patient"] = f"clinic-{row['patient']}"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return labels


@pytest.fixture(scope="module")
def parent(dataset: Path, tmp_path_factory) -> Path:
    """A small package trained from scratch: the parent the tests fine-tune."""
    out = tmp_path_factory.mktemp("parent") / "parent-pkg"
    Trainer(
        fast_config(dataset, out, epochs=1, phase1_epochs=0, name="parent-pkg", version="1.0.0"),
        log=lambda _: None,
    ).run()
    return out


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    return as_clinic_export(tmp_path_factory.mktemp("clinic"), patients=6)


def retrain(out: Path, *args: str) -> str:
    log = out.parent / f"{out.name}.log"
    call_command(
        "train_model", *args, "--input-size", "32", "--epochs", "1", "--phase1-epochs", "0",
        "--lr2", "1e-3", "--batch-size", "4", "--val-fraction", "0.34", "--device", "cpu",
        "--no-progress", "--fp32", "--cache-dir", str(out.parent / "cache"), "--out", str(out),
        stdout=log.open("w"),
    )  # fmt: skip
    return log.read_text()


def test_init_package_fine_tunes_it_and_the_card_records_parent_sources_and_mix(
    parent: Path, clinic: Path, dataset: Path, tmp_path: Path
) -> None:
    # Given a parent package, 12 clinic photos of 6 patients and 24 public photos of 12
    out = tmp_path / "child"
    # When it is fine-tuned on both at clinic:public = 1:1 (no --arch/--labels: from its card)
    log = retrain(
        out, "--init", str(parent), "--data", str(clinic), "--data", str(dataset),
        "--mix", "public=1,clinic=1", "--name", "parent-pkg", "--model-version", "1.1.0",
    )  # fmt: skip
    # Then the new card has the parent's model and labels, and records where it came from
    card = load_card(out)
    parent_card = load_card(parent)
    assert (card.architecture, card.input_size) == ("test_resnet", 32)
    assert [label.code for label in card.labels] == ["N", "C", "G"]
    assert card.preprocessing == parent_card.preprocessing
    assert card.lineage == {
        "parent": {
            "name": "parent-pkg",
            "version": "1.0.0",
            "weights_sha256": file_sha256(parent / "model.safetensors"),
        },
        "data_sources": [
            {
                "source": "clinic",
                "datasets": {"clinic": 12},
                "photos_available": 12,
                "patients_available": 6,
                "photos_used": 12,
                "patients_used": 6,
            },
            {
                "source": "public",
                "datasets": {"synthetic": 24},
                "photos_available": 24,
                "patients_available": 12,
                "photos_used": 12,
                "patients_used": 6,
            },
        ],
        "mix": {
            "requested": {"clinic": 1.0, "public": 1.0},
            "achieved": {"clinic": 0.5, "public": 0.5},
        },
    }
    assert "Fine-tuned from parent-pkg 1.0.0" in card.training_data
    assert "initialised from the package parent-pkg 1.0.0" in card.training_data
    assert "--mix clinic=1,public=1" in card.training_data
    assert "they and this package stay in the clinic" in card.training_data
    assert "left out 12 (left out by --mix clinic=1,public=1)" in log
    # And the split is by patient, over the mixed data only
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["validation"])
    assert len(set(split["train"]) | set(split["validation"])) == 12
    assert {p.split("-")[0] for p in split["validation"]} == {"clinic", "pt"}
    # And the card lists every clinic patient it saw (train and validation), no public one, for
    # the promotion gate; trained today; no main condition of its own (the parent has none)
    seen = set(split["train"]) | set(split["validation"])
    assert card.trained_on_keys == tuple(sorted(p for p in seen if p.startswith("clinic-")))
    assert len(card.trained_on_keys) == 6
    assert card.trained_at == dt.datetime.now(dt.UTC).date().isoformat()
    assert card.main_condition == ""


def test_init_by_bundled_name_and_labels_spelled_by_the_data(
    db, clinic: Path, tmp_path: Path
) -> None:
    # Given only clinic data, the bundled ophai-screening package named by its name
    out = tmp_path / "screening-clinic"
    retrain(
        out, "--init", "ophai-screening", "--data", str(clinic),
        "--labels", "normal=N,cataract=C,glaucoma=G", "--bn-init", "keep",
        "--main-condition", "cataract",
    )  # fmt: skip
    card = load_card(out)
    bundled = load_card(Path("ai_engine/packages/ophai-screening"))
    assert card.architecture == bundled.architecture == "mobilenetv2_100"
    assert card.architecture_kwargs == {"pad_type": "same"}
    assert (card.mean, card.std) == (bundled.mean, bundled.std)
    assert [(lb.code, lb.zh) for lb in card.labels] == [(lb.code, lb.zh) for lb in bundled.labels]
    assert card.lineage["parent"] == {
        "name": "ophai-screening",
        "version": bundled.version,
        "weights_sha256": bundled.weights.sha256,
    }
    assert card.lineage["mix"] is None
    assert [s["source"] for s in card.lineage["data_sources"]] == ["clinic"]
    assert card.main_condition == "cataract"
    assert len(card.trained_on_keys) == 6


def test_learning_fields_list_only_the_clinic_patients_seen(
    clinic: Path, dataset: Path, parent: Path
) -> None:
    # Given clinic and public photos, of which training saw the first clinic and public patient
    labelled = load_datasets(
        [clinic, dataset], task="multiclass", labels=parse_labels("normal,cataract,glaucoma")
    )
    first_clinic = next(i for i, s in enumerate(labelled.samples) if s.source == "clinic")
    first_public = next(i for i, s in enumerate(labelled.samples) if s.source != "clinic")
    seen = [first_clinic, first_public]
    # When the gate's card fields are computed, with a parent that names a main condition
    parent_package = replace(
        read_parent(str(parent)), card=replace(load_card(parent), main_condition="dr")
    )
    fields = learning_fields(
        labelled, seen, parent=parent_package, main_condition="", today=dt.date(2026, 12, 5)
    )
    # Then only the clinic patient's salted key is listed, and the parent's condition inherited
    assert fields == {
        "trained_on_keys": [labelled.samples[first_clinic].patient],
        "trained_at": "2026-12-05",
        "main_condition": "dr",
    }
    assert fields["trained_on_keys"][0].startswith("clinic-")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--arch", "resnet10t"], "its card says arch 'test_resnet'; drop the arch option"),
        (["--task", "multilabel"], "its card says task 'multiclass'; drop the task option"),
        (["--labels", "normal,cataract"], "outputs ['N', 'C', 'G']; map the data's names"),
        (["--mix", "clinic=1,public=2"], "--mix needs clinic and public data; no clinic photos"),
    ],
)
def test_init_package_errors(
    parent: Path, dataset: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        retrain(tmp_path / "x", "--init", str(parent), "--data", str(dataset), *options)
    assert not (tmp_path / "x").exists()


def test_a_changed_package_is_refused(parent: Path, dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / "model.json").write_bytes((parent / "model.json").read_bytes())
    weights = bytearray((parent / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(CommandError, match="does not match the card's sha256"):
        retrain(tmp_path / "x", "--init", str(copy), "--data", str(dataset))


@pytest.mark.parametrize("text", ["clinic=1", "clinic=0,public=1", "clinic=1,other=2", "x"])
def test_mix_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="expected clinic=W,public=W"):
        parse_mix(text)


def test_mix_keeps_the_smaller_side_and_whole_patients_of_the_larger(
    clinic: Path, dataset: Path
) -> None:
    labelled = load_datasets(
        [clinic, dataset], task="multiclass", labels=parse_labels("normal,cataract,glaucoma")
    )
    mixed = apply_mix(labelled, {"clinic": 1.0, "public": 3.0}, seed=0)
    assert source_counts(mixed)["clinic"]["photos"] == 8  # 24 public / 3: whole patients of 2
    assert source_counts(mixed)["public"]["photos"] == 24
    by_patient: dict[str, int] = {}
    for sample in mixed.samples:
        by_patient[sample.patient] = by_patient.get(sample.patient, 0) + 1
    assert set(by_patient.values()) == {2}
    with pytest.raises(DatasetError, match="no public photos"):
        apply_mix(
            load_datasets(
                clinic, task="multiclass", labels=parse_labels("normal,cataract,glaucoma")
            ),
            {"clinic": 1.0, "public": 1.0},
            seed=0,
        )


def test_a_source_may_lack_a_class_the_pool_has(dataset: Path, tmp_path: Path) -> None:
    # Given a clinic export with normal and cataract eyes only (no glaucoma yet)
    small = as_clinic_export(tmp_path, patients=2)
    labels = parse_labels("normal,cataract,glaucoma")
    # Then alone it cannot train the three labels, pooled with public data it can
    with pytest.raises(DatasetError, match=re.escape("no sample is labelled ['G']")):
        load_datasets(small, task="multiclass", labels=labels)
    pooled = load_datasets([small, dataset], task="multiclass", labels=labels)
    assert source_counts(pooled)["clinic"]["photos"] == 4
    assert pooled.counts() == {"N": 10, "C": 10, "G": 8}

"""Dataset reading, the patient-level split and clear errors for bad CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ai_engine.training.data import (
    Augmentation,
    DatasetError,
    load_dataset,
    load_datasets,
    odir_codes,
    split_by_patient,
    split_patient_eye,
)
from ai_engine.training.labels import parse_labels

from .conftest import CLASSES, fundus_photo

REFERENCE_ODIR = Path(__file__).resolve().parents[3] / "../shared/data/reference/odir_full_df.csv"


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_labels_csv_layout(dataset: Path) -> None:
    labelled = load_dataset(dataset, task="multiclass", labels=parse_labels("normal,glaucoma"))
    assert [label.code for label in labelled.labels] == ["N", "G"]
    assert labelled.counts() == {"N": 8, "G": 8}
    assert labelled.dropped == {"no label among --labels": 8}
    assert {s.patient for s in labelled.samples} == {f"pt-{p}" for p in range(12) if p % 3 != 1}


def test_folder_per_class_layout(dataset: Path) -> None:
    labelled = load_dataset(dataset.parent / "images", task="multiclass")
    assert [label.name for label in labelled.labels] == ["cataract", "glaucoma", "normal"]
    assert labelled.counts() == {"C": 8, "G": 8, "N": 8}
    # Patients come from the file names (0_left.jpg, 0_right.jpg → patient 0).
    assert len({s.patient for s in labelled.samples}) == 12


def test_binary_with_positive_values(dataset: Path) -> None:
    labelled = load_dataset(
        dataset, task="binary", labels=parse_labels("abnormal"), positive=["cataract", "glaucoma"]
    )
    assert labelled.targets().ravel().tolist().count(1.0) == 16
    assert len(labelled.samples) == 24


def test_where_filter_and_multilabel(dataset: Path) -> None:
    labelled = load_dataset(
        dataset,
        task="multilabel",
        labels=parse_labels("cataract,glaucoma"),
        where={"dataset": "synthetic"},
    )
    assert labelled.targets().sum(axis=0).tolist() == [8.0, 8.0]


def test_where_not_equal_keeps_the_other_rows(dataset: Path) -> None:
    from ai_engine.training.cli import key_value

    column, value = key_value("label!=glaucoma")
    labelled = load_dataset(
        dataset,
        task="multiclass",
        labels=parse_labels("normal,cataract"),
        where={column: value},
    )
    assert labelled.counts() == {"N": 8, "C": 8} and not labelled.dropped
    assert sorted({s.path.parent.name for s in labelled.samples}) == ["cataract", "normal"]
    assert "(label!=glaucoma)" in labelled.description
    with pytest.raises(DatasetError, match="--where column 'site'"):
        load_dataset(dataset, task="multiclass", where={"site!": "x"})


def test_split_keeps_both_eyes_of_a_patient_together(dataset: Path) -> None:
    labelled = load_dataset(
        dataset, task="multiclass", labels=parse_labels("normal,cataract,glaucoma")
    )
    train, val, test = split_by_patient(labelled.samples, fractions=[0.25, 0.25], seed=3)
    sides = [{labelled.samples[i].patient for i in part} for part in (train, val, test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sorted(train + val + test) == list(range(24))
    # Stratified: each class has 4 patients → 1 in validation, 1 in test, 2 in train.
    targets = labelled.targets()
    assert targets[val].sum(axis=0).tolist() == [2.0, 2.0, 2.0]
    assert targets[test].sum(axis=0).tolist() == [2.0, 2.0, 2.0]
    # Fixed seed → same split; another seed → another split.
    assert split_by_patient(labelled.samples, fractions=[0.25, 0.25], seed=3) == [train, val, test]
    assert split_by_patient(labelled.samples, fractions=[0.25, 0.25], seed=4) != [train, val, test]


def test_split_patient_eye() -> None:
    assert split_patient_eye("1234_left") == ("1234", "left")
    assert split_patient_eye("p7-OD") == ("p7", "right")
    assert split_patient_eye("scan42") == ("scan42", "")


def test_odir_keywords_to_codes() -> None:
    assert odir_codes("normal fundus") == {"N"}
    assert odir_codes("glaucoma，diabetic retinopathy") == {"G", "D"}
    assert odir_codes("normal fundus，lens dust") == {"N"}
    assert odir_codes("moderate non proliferative retinopathy，hypertensive retinopathy") == {
        "D",
        "H",
    }
    assert odir_codes("suspected glaucoma，drusen") == {"G", "O"}


def test_odir_full_df_per_eye_labels(tmp_path: Path) -> None:
    for name, colour in (("1_left.jpg", CLASSES["cataract"]), ("1_right.jpg", CLASSES["normal"])):
        fundus_photo(colour, seed=1).save(tmp_path / name)
    row = {
        "ID": "1",
        "Left-Fundus": "1_left.jpg",
        "Right-Fundus": "1_right.jpg",
        "Left-Diagnostic Keywords": "cataract",
        "Right-Diagnostic Keywords": "normal fundus",
        "N": "0",
        "D": "0",
        "G": "0",
        "C": "1",
        "A": "0",
        "H": "0",
        "M": "0",
        "O": "0",
        "filename": "1_left.jpg",
    }
    write_csv(tmp_path / "full_df.csv", [row, {**row, "filename": "1_right.jpg"}])
    labelled = load_dataset(tmp_path / "full_df.csv", task="multilabel", labels=parse_labels("N,C"))
    by_eye = {s.eye: s.target for s in labelled.samples}
    assert by_eye == {"left": (0.0, 1.0), "right": (1.0, 0.0)}  # per eye, not the patient's flags
    assert {s.patient for s in labelled.samples} == {"1"}


def test_reference_odir_table_parses(tmp_path: Path) -> None:
    if not REFERENCE_ODIR.is_file():
        pytest.skip("../shared/data is not available")
    with pytest.raises(DatasetError, match="image files are missing.*--images"):
        load_dataset(
            REFERENCE_ODIR,
            task="multilabel",
            labels=parse_labels("N,D,G,C,A,H,M,O"),
            images=tmp_path,
        )


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        ([{"picture": "a.jpg", "label": "normal"}], {}, "no image column"),
        ([{"file": "a.jpg", "grade": "1"}], {}, "no label column 'label'"),
        ([{"file": "missing.jpg", "label": "normal"}], {}, "1 of 1 image files are missing"),
        ([{"file": "a.jpg", "label": "drusen"}], {}, "label mismatch: no row carries any of"),
        ([{"file": "a.jpg", "label": "normal"}], {"where": {"site": "x"}}, "--where column 'site'"),
    ],
)
def test_bad_csvs_give_clear_errors(tmp_path: Path, rows, kwargs, message) -> None:
    fundus_photo(CLASSES["normal"], seed=0).save(tmp_path / "a.jpg")
    path = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path, task="multiclass", labels=parse_labels("normal,glaucoma"), **kwargs)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="the CSV is empty"):
        load_dataset(tmp_path / "empty.csv", task="multiclass")
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.csv", task="multiclass")


def test_augmentation_keeps_shape_and_black_surround() -> None:
    square = np.asarray(fundus_photo(CLASSES["normal"], seed=0, size=64))
    out = Augmentation()(square, np.random.default_rng(0))
    assert out.shape == square.shape and out.dtype == np.uint8
    assert out[0, 0].tolist() == [0, 0, 0]
    assert not np.array_equal(out, square)


def _two_sources(tmp_path: Path) -> tuple[Path, Path]:
    """A DME-style CSV (``dme`` 0/1) and a camera-style CSV (``maculopathy`` yes/no/blank)."""
    first, second = tmp_path / "mx", tmp_path / "cam"
    rows_mx, rows_cam = [], []
    for folder, rows, prefix in ((first, rows_mx, "mx"), (second, rows_cam, "cam")):
        (folder / "images").mkdir(parents=True)
        for i in range(10):
            file = f"images/{i}.jpg"
            fundus_photo((200, 90, 40), i).save(folder / file)
            row = {"file": file, "dataset": prefix, "patient": f"{prefix}-{i}", "eye": "left"}
            if prefix == "mx":
                row["dme"] = str(i % 2)
            else:
                row["maculopathy"] = "" if i == 9 else ("yes" if i % 2 else "no")
            rows.append(row)
    return write_csv(first / "labels.csv", rows_mx), write_csv(second / "labels.csv", rows_cam)


def test_several_sources_pool_with_a_label_column_each(tmp_path: Path) -> None:
    mx, cam = _two_sources(tmp_path)
    pooled = load_datasets(
        [mx, cam],
        task="binary",
        labels=parse_labels("dme"),
        label_column=["dme", "maculopathy"],
        positive=["1", "yes"],
    )
    assert len(pooled.samples) == 19  # the camera row without a maculopathy grade is left out
    assert pooled.dropped == {"no label value": 1}
    assert pooled.counts() == {"DME": 9}
    assert {s.source for s in pooled.samples} == {"mx", "cam"}
    assert all(s.path.is_file() for s in pooled.samples)
    assert pooled.description == "mx/labels.csv + cam/labels.csv"
    train, validation = split_by_patient(pooled.samples, fractions=[0.4], seed=0)
    for part in (train, validation):
        assert {pooled.samples[i].source for i in part} == {"mx", "cam"}


def test_several_sources_must_not_share_patients_or_miscount_columns(tmp_path: Path) -> None:
    mx, _ = _two_sources(tmp_path)
    with pytest.raises(DatasetError, match="share patient keys"):
        load_datasets([mx, mx], task="binary", labels=parse_labels("dme"), label_column="dme")
    with pytest.raises(DatasetError, match="3 label columns for 2 datasets"):
        load_datasets(
            [mx, mx], task="binary", labels=parse_labels("dme"), label_column=["a", "b", "c"]
        )
    with pytest.raises(DatasetError, match="need --labels"):
        load_datasets([mx, mx], task="multiclass", label_column="dme")


def test_the_recorded_recipe_repeats_data_for_each_source() -> None:
    import argparse

    from ai_engine.training.cli import add_train_arguments, reproducing_command

    parser = argparse.ArgumentParser()
    add_train_arguments(parser, cache_dir="var/cache")
    options = vars(
        parser.parse_args(
            ["--data", "a/labels.csv", "--data", "b/labels.csv", "--label-column", "dme,mac"]
            + ["--out", "pkg"]
        )
    )
    command = reproducing_command(parser, options, "python manage.py train_model", set())
    assert "--data a/labels.csv --data b/labels.csv" in command
    assert "--label-column dme,mac" in command

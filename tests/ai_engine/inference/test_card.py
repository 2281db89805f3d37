from __future__ import annotations

import json

import pytest

from ai_engine.inference.card import CardError, load_card, parse_card

from .conftest import card_dict, icdr_labels, quality_card_dict


def test_valid_card_parses_with_defaults() -> None:
    card = parse_card(card_dict())
    assert card.task == "multilabel"
    assert card.num_outputs == 8
    assert card.labels[0].normal is True
    assert card.labels[1].referable is True
    assert card.cam.target_layers == ("layer4.-1", "layer3")
    assert card.weights.format == "safetensors"
    assert card.weights.dtype == "float32"


def test_card_round_trips_through_json() -> None:
    card = parse_card(card_dict())
    assert parse_card(json.loads(card.to_json())) == card


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "model.json: name must be a non-empty string"),
        ({"version": 3}, "model.json: version must be a non-empty string"),
        (
            {"task": "regression"},
            "model.json: task must be one of multilabel, multiclass, binary (got 'regression')",
        ),
        ({"architecture": None}, "model.json: architecture must be a non-empty string"),
        (
            {"architecture_kwargs": {"num_classes": 3}},
            "model.json: architecture_kwargs must not set ['num_classes']",
        ),
        ({"architecture_kwargs": []}, "model.json: architecture_kwargs must be an object"),
        ({"input_size": 8}, "model.json: input_size must be an integer between 16 and 2048"),
        ({"input_size": 224.0}, "model.json: input_size must be an integer between 16 and 2048"),
        ({"mean": [0.5, 0.5]}, "model.json: mean must be a list of 3 numbers between 0.0 and 1.0"),
        (
            {"std": [0.2, 0.0, 0.2]},
            "model.json: std must be a list of 3 numbers between 1e-06 and 10.0",
        ),
        (
            {"preprocessing": ["resize", "sharpen", "normalize"]},
            "model.json: preprocessing[1] must be one of fundus_crop, pad_square, resize, normalize, clahe, ben_graham (got 'sharpen')",
        ),
        ({"preprocessing": ["resize"]}, "model.json: preprocessing must include 'normalize'"),
        (
            {"preprocessing": ["normalize", "resize"]},
            "model.json: preprocessing must end with 'normalize'",
        ),
        (
            {"preprocessing": ["resize", "fundus_crop", "normalize"]},
            "model.json: preprocessing step 'fundus_crop' must come before 'resize'",
        ),
        (
            {"preprocessing": ["clahe", "resize", "normalize"]},
            "model.json: preprocessing step 'clahe' must come after 'resize'",
        ),
        ({"labels": []}, "model.json: labels must be a non-empty list"),
        ({"validation": []}, "model.json: validation must be an object of metrics"),
        ({"demonstration": "yes"}, "model.json: demonstration must be true or false"),
        (
            {"cam": {"method": "scorecam", "target_layers": ["layer4"]}},
            "model.json: cam.method must be one of gradcam, gradcam++, layercam (got 'scorecam')",
        ),
        (
            {"cam": {"method": "gradcam", "target_layers": []}},
            "model.json: cam.target_layers must be a non-empty list of layer paths",
        ),
        (
            {"cam": {"method": "gradcam", "target_layers": ["layer4[-1]; rm"]}},
            "model.json: cam.target_layers[0] must be a dotted module path such as 'layer4.-1' or 'blocks.-1.norm1' (got 'layer4[-1]; rm')",
        ),
        (
            {"cam": {"method": "gradcam", "target_layers": ["a"], "reshape": "swin"}},
            "model.json: cam.reshape must be one of null, vit (got 'swin')",
        ),
        (
            {"weights": {"file": "../evil.safetensors", "sha256": "0" * 64}},
            "model.json: weights.file must be a plain file name inside the package",
        ),
        (
            {"weights": {"file": "m.safetensors", "sha256": "ABC"}},
            "model.json: weights.sha256 must be 64 lowercase hexadecimal characters",
        ),
        (
            {"weights": {"file": "m.bin", "sha256": "0" * 64, "format": "onnx"}},
            "model.json: weights.format must be one of safetensors, pth",
        ),
        (
            {"weights": {"file": "m.pth", "sha256": "0" * 64, "dtype": "int8"}},
            "model.json: weights.dtype must be one of float32, float16",
        ),
        (
            {"dr_grading": {"scheme": "icdr_0_4"}},
            "model.json: dr_grading.scheme icdr_0_4 needs a multiclass task with 5 labels",
        ),
    ],
)
def test_invalid_field_is_named(overrides: dict, message: str) -> None:
    with pytest.raises(CardError) as error:
        parse_card(card_dict(**overrides))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("label_change", "message"),
    [
        ({"threshold": 1.5}, "model.json: labels[2].threshold must be between 0 and 1"),
        ({"threshold": True}, "model.json: labels[2].threshold must be between 0 and 1"),
        ({"zh": ""}, "model.json: labels[2].zh must be a non-empty string"),
        ({"en": None}, "model.json: labels[2].en must be a non-empty string"),
        (
            {"code": "a b"},
            "model.json: labels[2].code must be 1-40 characters of letters, digits, _ . + -",
        ),
        ({"code": "N"}, "model.json: labels has duplicate codes ['N']"),
        ({"referable": "no"}, "model.json: labels[2].referable must be true or false"),
    ],
)
def test_invalid_label_is_named(label_change: dict, message: str) -> None:
    card = card_dict()
    card["labels"][2].update(label_change)
    with pytest.raises(CardError) as error:
        parse_card(card)
    assert str(error.value) == message


def test_binary_needs_exactly_one_label() -> None:
    with pytest.raises(CardError, match="a binary task declares exactly 1 label"):
        parse_card(card_dict(task="binary"))
    card = parse_card(
        card_dict(task="binary", labels=[{"code": "abnormal", "zh": "异常", "en": "abnormal"}])
    )
    assert card.num_outputs == 1
    assert card.labels[0].threshold == 0.5


def test_dr_grading_schemes() -> None:
    five = parse_card(
        card_dict(task="multiclass", labels=icdr_labels(5), dr_grading={"scheme": "icdr_0_4"})
    )
    assert five.dr_grading == {
        "scheme": "icdr_0_4",
        "referable_from": 2,
        "vision_threatening_from": 3,
        "referable_threshold": None,
    }
    four = parse_card(
        card_dict(
            task="multiclass",
            labels=icdr_labels(4),
            dr_grading={"scheme": "icdr_0_3", "referable_from": 1},
        )
    )
    assert four.dr_grading == {
        "scheme": "icdr_0_3",
        "referable_from": 1,
        "vision_threatening_from": 3,
        "referable_threshold": None,
    }


@pytest.mark.parametrize(
    "grading, message",
    [
        ({"referable_threshold": 1.5}, "referable_threshold must be a number in"),
        ({"referable_threshold": True}, "referable_threshold must be a number in"),
        ({"vision_threatening_from": 1}, "vision_threatening_from must be a grade from"),
        ({"vision_threatening_from": 5}, "vision_threatening_from must be a grade from"),
    ],
)
def test_dr_grading_operating_point_is_checked(grading, message) -> None:
    with pytest.raises(CardError, match=message):
        parse_card(
            card_dict(
                task="multiclass",
                labels=icdr_labels(5),
                dr_grading={"scheme": "icdr_0_4", **grading},
            )
        )
    card = parse_card(
        card_dict(
            task="multiclass",
            labels=icdr_labels(5),
            dr_grading={"scheme": "icdr_0_4", "referable_threshold": 0.3},
        )
    )
    assert card.dr_grading["referable_threshold"] == 0.3


def test_dr_grading_names_how_its_operating_point_was_chosen() -> None:
    point = {
        "sensitivity_target": 0.9,
        "chosen_on": "validation",
        "n_images": 120,
        "n_positive": 40,
        "sensitivity": 0.925,
        "specificity": 0.8,
    }
    card = parse_card(
        card_dict(
            task="multiclass",
            labels=icdr_labels(5),
            dr_grading={
                "scheme": "icdr_0_4",
                "referable_threshold": 0.31,
                "operating_point": point,
            },
        )
    )
    assert card.dr_grading["operating_point"] == point
    assert json.loads(card.to_json())["dr_grading"]["operating_point"]["chosen_on"] == "validation"


@pytest.mark.parametrize(
    "grading, message",
    [
        (
            {"operating_point": {"sensitivity_target": 0.9, "chosen_on": "validation"}},
            "operating_point needs a referable_threshold",
        ),
        (
            {
                "referable_threshold": 0.3,
                "operating_point": {"sensitivity_target": 0.9, "chosen_on": "test"},
            },
            "operating_point.chosen_on must be one of validation",
        ),
        (
            {
                "referable_threshold": 0.3,
                "operating_point": {"sensitivity_target": 0, "chosen_on": "validation"},
            },
            "sensitivity_target must be a number in",
        ),
        (
            {
                "referable_threshold": 0.3,
                "operating_point": {
                    "sensitivity_target": 0.9,
                    "chosen_on": "validation",
                    "n_images": -1,
                },
            },
            "n_images must be a whole number",
        ),
        (
            {
                "referable_threshold": 0.3,
                "operating_point": {"sensitivity_target": 0.9, "chosen_on": "validation", "auc": 1},
            },
            "unknown fields",
        ),
        ({"referable_threshold": 0.3, "operating_point": "validation"}, "must be an object"),
    ],
)
def test_dr_grading_operating_point_object_is_checked(grading, message) -> None:
    with pytest.raises(CardError, match=message):
        parse_card(
            card_dict(
                task="multiclass",
                labels=icdr_labels(5),
                dr_grading={"scheme": "icdr_0_4", **grading},
            )
        )


def test_arbitrary_label_list() -> None:
    codes = ["AMD", "CSC", "DR", "RP", "RVO"]
    labels = [{"code": c, "zh": c, "en": c, "threshold": 0.3} for c in codes]
    card = parse_card(card_dict(labels=labels))
    assert [label.code for label in card.labels] == codes


def test_load_card_reports_missing_and_broken_json(tmp_path) -> None:
    with pytest.raises(CardError, match="model.json: not found"):
        load_card(tmp_path)
    (tmp_path / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CardError, match="model.json: not valid JSON"):
        load_card(tmp_path)


def test_the_printed_texts_come_in_both_report_languages() -> None:
    card = parse_card(
        card_dict(
            evidence="Macro-F1 0.67 on 297 held-out eyes",
            evidence_zh="在 297 只留出眼上宏 F1 为 0.67",
            evidence_en="Macro-F1 0.67 on 297 held-out eyes",
            intended_use_zh="仅用于演示，不可用于诊断。",
            intended_use_en="Demonstration only; not for diagnosis.",
        )
    )
    assert card.evidence_text("zh-hans") == "在 297 只留出眼上宏 F1 为 0.67"
    assert card.evidence_text("en") == "Macro-F1 0.67 on 297 held-out eyes"
    assert card.intended_use_text("zh-hans") == "仅用于演示，不可用于诊断。"
    assert card.intended_use_text("en") == "Demonstration only; not for diagnosis."
    assert parse_card(json.loads(card.to_json())) == card


def test_an_older_card_prints_its_one_text_in_every_language() -> None:
    card = parse_card(card_dict(evidence="AUC 0.9 (n=120)", intended_use="Research."))
    assert card.evidence_text("zh-hans") == card.evidence_text("en") == "AUC 0.9 (n=120)"
    assert card.intended_use_text("zh-hans") == "Research."


def test_a_printed_text_that_is_not_a_string_is_named() -> None:
    with pytest.raises(CardError, match="model.json: evidence_zh must be a string"):
        parse_card(card_dict(evidence_zh=["0.67"]))


def test_test_time_augmentation_is_checked() -> None:
    assert parse_card(card_dict()).tta == ()
    assert parse_card(card_dict(tta=["hflip", "hflip"])).tta == ("hflip",)
    for bad in (["rotate"], "hflip", [1]):
        with pytest.raises(CardError, match="tta must be a list of hflip"):
            parse_card(card_dict(tta=bad))


def test_a_card_is_a_diagnosis_model_unless_it_says_quality() -> None:
    diagnosis = parse_card(card_dict())
    assert (diagnosis.role, diagnosis.is_quality_model, diagnosis.quality_gate) == (
        "diagnosis",
        False,
        None,
    )
    quality = parse_card(quality_card_dict(reject_threshold=0.3))
    assert quality.role == "quality" and quality.is_quality_model
    assert quality.quality_gate == {"reject_label": "reject", "reject_threshold": 0.3}
    assert parse_card(json.loads(quality.to_json())) == quality


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "screening"}, "role must be one of diagnosis, quality"),
        ({"quality_gate": None}, "needs a quality_gate object"),
        ({"quality_gate": {"reject_label": "bad", "reject_threshold": 0.5}}, "reject_label must"),
        ({"quality_gate": {"reject_label": "reject", "reject_threshold": 1.0}}, "in \\(0, 1\\)"),
        ({"quality_gate": {"reject_label": "reject"}}, "reject_threshold must be a number"),
        ({"task": "multilabel"}, "a quality model is multiclass or binary"),
    ],
)
def test_an_invalid_quality_card_is_named(overrides: dict, message: str) -> None:
    with pytest.raises(CardError, match=message):
        parse_card(quality_card_dict(**overrides))


def test_a_diagnosis_card_with_a_quality_gate_is_refused() -> None:
    with pytest.raises(CardError, match='quality_gate belongs to a card with "role": "quality"'):
        parse_card(card_dict(quality_gate={"reject_label": "N", "reject_threshold": 0.5}))

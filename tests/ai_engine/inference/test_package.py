from __future__ import annotations

import json

import pytest
import torch

from ai_engine.inference.card import CardError
from ai_engine.inference.package import (
    ModelPackage,
    PackageError,
    file_sha256,
    resolve_device,
    resolve_module,
)

from .conftest import card_dict, tiny_model


def test_load_verifies_and_builds_an_eval_model(make_package) -> None:
    folder = make_package()
    package = ModelPackage.load(folder, "cpu")
    assert package.card.name == "tiny"
    assert package.weights_sha256 == file_sha256(folder / "model.safetensors")
    assert package.model.training is False
    assert package.device == torch.device("cpu")
    assert all(not p.requires_grad for p in package.model.parameters())
    reference = tiny_model(card_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(package.model.state_dict()[key], value)


def test_sha256_mismatch_is_refused(make_package) -> None:
    folder = make_package()
    card = json.loads((folder / "model.json").read_text())
    card["weights"]["sha256"] = "f" * 64
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(
        PackageError, match="does not match model.json weights.sha256 f{64}; refusing to load"
    ):
        ModelPackage.load(folder, "cpu")


def test_tampered_weights_are_refused(make_package) -> None:
    folder = make_package()
    with (folder / "model.safetensors").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PackageError, match="refusing to load"):
        ModelPackage.load(folder, "cpu")


def test_missing_weights_file(make_package) -> None:
    folder = make_package()
    (folder / "model.safetensors").unlink()
    with pytest.raises(PackageError, match="weights file 'model.safetensors' is missing"):
        ModelPackage.load(folder, "cpu")


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_pth_raw_or_wrapped_state_dict(make_package, wrapper) -> None:
    folder = make_package(fmt="pth")
    if wrapper:
        state = torch.load(folder / "model.pth", weights_only=True)
        torch.save({wrapper: state, "epoch": 3}, folder / "model.pth")
        card = json.loads((folder / "model.json").read_text())
        card["weights"]["sha256"] = file_sha256(folder / "model.pth")
        (folder / "model.json").write_text(json.dumps(card))
    package = ModelPackage.load(folder, "cpu")
    safetensors_package = ModelPackage.load(make_package("st"), "cpu")
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(package.model(x), safetensors_package.model(x))


def test_pth_with_pickled_objects_is_refused(make_package) -> None:
    folder = make_package(fmt="pth")
    torch.save({"state_dict": torch.nn.Linear(2, 2)}, folder / "model.pth")
    card = json.loads((folder / "model.json").read_text())
    card["weights"]["sha256"] = file_sha256(folder / "model.pth")
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(Exception, match="Weights only load failed"):
        ModelPackage.load(folder, "cpu")


def test_fp16_weights_load_as_float32(make_package) -> None:
    package = ModelPackage.load(make_package(fp16=True), "cpu")
    assert package.card.weights.dtype == "float16"
    assert {p.dtype for p in package.model.parameters()} == {torch.float32}


def test_strict_load_rejects_a_different_head(make_package) -> None:
    folder = make_package()
    card = json.loads((folder / "model.json").read_text())
    card["labels"] = card["labels"][:5]
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(PackageError, match="does not fit resnet10t"):
        ModelPackage.load(folder, "cpu")


def test_unknown_target_layer_is_reported(make_package) -> None:
    folder = make_package(cam={"method": "gradcam", "target_layers": ["layer9"]})
    with pytest.raises(CardError, match="cam target layer 'layer9': no attribute 'layer9'"):
        ModelPackage.load(folder, "cpu")


def test_resolve_module_supports_negative_indices(make_package) -> None:
    model = tiny_model(card_dict())
    assert resolve_module(model, "layer4.-1") is model.layer4[-1]
    assert resolve_module(model, "layer4[-1].conv1") is model.layer4[-1].conv1


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(PackageError, match="CUDA is not available"):
            resolve_device("cuda")

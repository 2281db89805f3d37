"""import_model: external timm state_dicts (prefixed keys, .pth or .safetensors) → packages."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import save_file

from ai_engine.inference.package import ModelPackage


def external_model(num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(1)
    return timm.create_model("test_resnet", pretrained=False, num_classes=num_classes).eval()


def test_import_pth_with_module_prefix(tmp_path: Path) -> None:
    model = external_model()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": state, "epoch": 7}, tmp_path / "ckpt.pth")
    out = tmp_path / "imported"
    call_command(
        "import_model", str(tmp_path / "ckpt.pth"), "--arch", "test_resnet",
        "--labels", "normal,cataract,glaucoma", "--task", "multiclass", "--out", str(out),
        stdout=open(tmp_path / "log.txt", "w"),  # noqa: SIM115
    )  # fmt: skip
    package = ModelPackage.load(out, "cpu")
    card = package.card
    assert [label.code for label in card.labels] == ["N", "C", "G"]
    assert card.demonstration is True and card.validation == {}
    assert card.cam.target_layers == ("layer4", "layer3")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(package.model(x), model(x), atol=1e-6)


def test_import_safetensors_with_model_prefix(tmp_path: Path) -> None:
    model = external_model(num_classes=1)
    save_file(
        {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()},
        str(tmp_path / "w.safetensors"),
    )
    out = tmp_path / "imported"
    call_command(
        "import_model", str(tmp_path / "w.safetensors"), "--arch", "test_resnet",
        "--labels", "referable_dr", "--task", "binary", "--input-size", "128", "--out", str(out),
        stdout=open(tmp_path / "log.txt", "w"),  # noqa: SIM115
    )  # fmt: skip
    card = ModelPackage.load(out, "cpu").card
    assert card.task == "binary" and card.labels[0].code == "RDR" and card.input_size == 128


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--arch", "test_resnet", "--labels", "N,D,G,C"],
            "label mismatch: the checkpoint's classifier fc.weight has 3 outputs",
        ),
        (["--arch", "resnet_made_up", "--labels", "N,C,G"], "unknown timm architecture"),
        (["--arch", "test_efficientnet", "--labels", "N,C,G"], "does not fit the architecture"),
    ],
)
def test_import_errors(tmp_path: Path, arguments, message) -> None:
    torch.save(external_model().state_dict(), tmp_path / "ckpt.pth")
    with pytest.raises(CommandError, match=message):
        call_command(
            "import_model",
            str(tmp_path / "ckpt.pth"),
            *arguments,
            "--task",
            "multiclass",
            "--out",
            str(tmp_path / "o"),
        )


def test_import_missing_or_unsafe_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such checkpoint file"):
        call_command(
            "import_model",
            str(tmp_path / "none.pth"),
            "--arch",
            "test_resnet",
            "--labels",
            "N",
            "--task",
            "binary",
            "--out",
            str(tmp_path / "o"),
        )
    # A pickle holding arbitrary objects is refused by weights_only loading.
    torch.save({"state_dict": {"x": object()}}, tmp_path / "evil.pth")
    with pytest.raises(CommandError, match="not a readable checkpoint"):
        call_command(
            "import_model",
            str(tmp_path / "evil.pth"),
            "--arch",
            "test_resnet",
            "--labels",
            "N",
            "--task",
            "binary",
            "--out",
            str(tmp_path / "o"),
        )

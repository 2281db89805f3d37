"""Model packages: a folder with ``model.json`` and its weights, loaded into a timm model.

Weights only ever come from the package folder (never a hub), after their SHA-256 matches
the card.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .card import CardError, ModelCard, load_card, parse_card


class PackageError(RuntimeError):
    """The package cannot be loaded: missing or tampered weights, or weights not matching the card."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PackageError("device 'cuda' requested but CUDA is not available")
    if resolved.type not in ("cpu", "cuda"):
        raise PackageError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return resolved


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """``layer4.-1`` / ``blocks.-1.norm1`` / ``features.norm5`` → the submodule."""
    module: Any = model
    for part in path.replace("[", ".").replace("]", "").split("."):
        if part.lstrip("-").isdigit():
            try:
                module = module[int(part)]
            except (TypeError, IndexError, KeyError):
                raise CardError(f"model.json: cam target layer {path!r}: no item {part}") from None
        else:
            if not hasattr(module, part):
                raise CardError(f"model.json: cam target layer {path!r}: no attribute {part!r}")
            module = getattr(module, part)
    if not isinstance(module, nn.Module):
        raise CardError(f"model.json: cam target layer {path!r} is not a module")
    return module


def build_model(card: ModelCard) -> nn.Module:
    try:
        return timm.create_model(
            card.architecture,
            pretrained=False,
            num_classes=card.num_outputs,
            **card.architecture_kwargs,
        )
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CardError(
            f"model.json: architecture {card.architecture!r} cannot be built: {exc}"
        ) from None


def _read_state_dict(path: Path, fmt: str) -> dict[str, torch.Tensor]:
    if fmt == "safetensors":
        return load_file(str(path), device="cpu")
    # weights_only: a .pth is a pickle, and only tensors and plain containers are allowed.
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise PackageError(f"{path.name}: not a state_dict of tensors")
    return loaded


@dataclass
class ModelPackage:
    """A loaded, verified model ready for inference."""

    card: ModelCard
    model: nn.Module
    device: torch.device
    path: Path
    weights_sha256: str

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> ModelPackage:
        path = Path(path)
        card = load_card(path)
        folder = path if path.is_dir() else path.parent
        weights_path = folder / card.weights.file
        if not weights_path.is_file():
            raise PackageError(f"{folder}: weights file {card.weights.file!r} is missing")
        actual = file_sha256(weights_path)
        if actual != card.weights.sha256:
            raise PackageError(
                f"{weights_path.name}: SHA-256 {actual} does not match model.json "
                f"weights.sha256 {card.weights.sha256}; refusing to load"
            )
        model = build_model(card)
        state = _read_state_dict(weights_path, card.weights.format)
        # fp16 packages halve the download; CPU kernels want float32.
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PackageError(
                f"{weights_path.name} does not fit {card.architecture}: {exc}"
            ) from None
        for layer in card.cam.target_layers:
            resolve_module(model, layer)
        # CAMs take gradients w.r.t. the input only; parameters never need .grad.
        model.requires_grad_(False)
        model.eval()
        target = resolve_device(device)
        model.to(target)
        if target.type == "cuda":
            model.to(memory_format=torch.channels_last)
        return cls(card=card, model=model, device=target, path=folder, weights_sha256=actual)


def write_package(
    folder: str | Path,
    model: nn.Module,
    card: ModelCard | dict[str, Any],
    *,
    fp16: bool = False,
    fmt: str = "safetensors",
) -> ModelCard:
    """Save ``model`` with its card; fills ``weights`` (file, format, dtype, sha256)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = card.to_dict() if isinstance(card, ModelCard) else json.loads(json.dumps(card))
    state = {
        k: (v.half() if fp16 and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    file = "model.safetensors" if fmt == "safetensors" else "model.pth"
    weights_path = folder / file
    if fmt == "safetensors":
        save_file(state, str(weights_path))
    elif fmt == "pth":
        torch.save(state, str(weights_path))
    else:
        raise ValueError(f"unknown weights format {fmt!r}")
    raw["weights"] = {
        "file": file,
        "sha256": file_sha256(weights_path),
        "format": fmt,
        "dtype": "float16" if fp16 else "float32",
    }
    parsed = parse_card(raw)
    (folder / "model.json").write_text(parsed.to_json() + "\n", encoding="utf-8")
    return parsed

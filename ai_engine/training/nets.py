"""timm models for training and import: creation, checkpoint key clean-up, CAM layers, mean/std."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file
from torch import nn

PREFIXES = ("module.", "model.", "_orig_mod.")


class NetError(ValueError):
    """An architecture or checkpoint that cannot be used."""


def create(arch: str, num_outputs: int, kwargs: dict[str, Any] | None = None) -> nn.Module:
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('_')[0]}*")[:8]
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise NetError(f"unknown timm architecture {arch!r}{hint}")
    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_outputs, **(kwargs or {}))
    except (RuntimeError, TypeError, ValueError, AssertionError) as exc:
        raise NetError(
            f"architecture {arch!r} cannot be built with {kwargs or {}}: {exc}"
        ) from None


def mean_std(model: nn.Module) -> tuple[list[float], list[float]]:
    """The normalisation timm declares for the architecture (ImageNet's by default)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = [float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))]
    std = [float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))]
    return mean, std


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` or ``.pth``/``.pt`` state_dict (``weights_only``), wrappers and
    ``module.``/``model.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise NetError(f"{path}: no such checkpoint file")
    try:
        if path.suffix == ".safetensors":
            loaded: Any = load_file(str(path), device="cpu")
        else:
            # weights_only: a .pth is a pickle; only tensors and plain containers may load.
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch/safetensors raise many types for bad files
        raise NetError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise NetError(f"{path}: no state_dict found")
    state = {}
    for key, value in loaded.items():
        if not isinstance(value, torch.Tensor):
            continue
        clean = key
        while clean.startswith(PREFIXES):
            clean = clean[next(len(p) for p in PREFIXES if clean.startswith(p)) :]
        state[clean] = value
    if not state:
        raise NetError(f"{path}: the checkpoint holds no tensors")
    return state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], *, strict_head: bool) -> None:
    """Load ``state``; with ``strict_head=False`` a classifier of another size is left as built."""
    own = model.state_dict()
    if not strict_head:
        head_keys = {
            f"{name}.{p}" if name else p
            for name, module in model.named_modules()
            if module is model.get_classifier()
            for p, _ in module.named_parameters()
        }
        state = {
            k: v
            for k, v in state.items()
            if not (k in head_keys and k in own and own[k].shape != v.shape)
        }
    mismatched = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if not strict_head:
        missing = [k for k in missing if k not in head_keys]
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(f"shape mismatch: {', '.join(mismatched[:4])}")
        if missing:
            parts.append(
                f"missing keys: {', '.join(missing[:6])}" + (" …" if len(missing) > 6 else "")
            )
        if unexpected:
            parts.append(
                f"unexpected keys: {', '.join(unexpected[:6])}"
                + (" …" if len(unexpected) > 6 else "")
            )
        raise NetError("the checkpoint does not fit the architecture: " + "; ".join(parts))
    model.load_state_dict(state, strict=strict_head)


def default_cam(model: nn.Module, input_size: int) -> dict[str, Any]:
    """CAM settings that resolve on ``model``: ViTs → Grad-CAM on the last block's norm1 with a
    token reshape; CNNs → LayerCAM on the last two feature stages (found by a probe pass)."""
    if (
        hasattr(model, "patch_embed")
        and hasattr(model, "blocks")
        and hasattr(model, "num_prefix_tokens")
    ):
        return {"method": "gradcam", "target_layers": ["blocks.-1.norm1"], "reshape": "vit"}
    head = model.get_classifier()
    skip = {id(m) for m in head.modules()} if isinstance(head, nn.Module) else set()
    pool = getattr(model, "global_pool", None)
    if isinstance(pool, nn.Module):
        skip |= {id(m) for m in pool.modules()}
    names = {id(m): n for n, m in model.named_modules() if n}
    seen: list[tuple[str, int]] = []
    hooks = [
        module.register_forward_hook(
            lambda m, _i, out: (
                seen.append((names[id(m)], out.shape[-1]))
                if isinstance(out, torch.Tensor) and out.dim() == 4 and id(m) not in skip
                else None
            )
        )
        for module in model.modules()
        if id(module) in names
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    spatial = [(n, w) for n, w in seen if w > 1] or seen
    if not spatial:
        raise NetError("cannot find a convolutional feature map for CAMs; pass --cam-layers")
    last, width = spatial[-1]
    # The stage before: the shallowest module with a 2× larger map (outside the last layer).
    outside = [
        (n, w)
        for n, w in spatial
        if w >= 2 * width and not n.startswith(last + ".") and not last.startswith(n + ".")
    ]
    closest = [(n, w) for n, w in outside if w == 2 * width] or [
        (n, w) for n, w in outside if w <= 4 * width
    ]
    earlier = []
    if closest:
        depth = min(n.count(".") for n, _ in closest)
        earlier = [n for n, _ in closest if n.count(".") == depth]
    layers = [last] + ([earlier[-1]] if earlier else [])
    return {"method": "layercam", "target_layers": layers, "reshape": None}

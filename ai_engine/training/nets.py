"""timm models for training and import: creation, checkpoint key clean-up, CAM layers, mean/std."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors import safe_open
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
    # BatchNorm step counters are bookkeeping, absent from converted checkpoints.
    state = {
        **{k: v for k, v in own.items() if k.endswith("num_batches_tracked") and k not in state},
        **state,
    }
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


@dataclass(frozen=True)
class InitWeights:
    """A local starting point: its tensors and what its safetensors metadata says about it."""

    path: Path
    state: dict[str, torch.Tensor]
    arch: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    mean: list[float] | None = None
    std: list[float] | None = None
    source: str = ""
    note: str = ""

    def provenance(self) -> str:
        """One line for the card: file, sha256 prefix, source and licence as the file states them."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        parts = [f"{self.path.name} (sha256 {digest}…)"]
        if self.source:
            parts.append(f"from {self.source}")
        return "initialised from " + ", ".join(parts)


def read_init(path: str | Path) -> InitWeights:
    """``--init`` weights plus the build hints a converted checkpoint carries in its metadata
    (``arch``, ``timm_kwargs``, ``mean``, ``std``, ``source``), e.g. the ImageNet MobileNetV2
    in ``../shared/data/pretrained`` (``pad_type="same"``, mean 0.5 / std 0.502)."""
    path = Path(path)
    state = read_checkpoint(path)
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as handle:
            meta = dict(handle.metadata() or {})

    def triple(text: str | None) -> list[float] | None:
        if not text:
            return None
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise NetError(f"{path}: metadata mean/std {text!r} is not three numbers") from None
        if len(values) != 3:
            raise NetError(f"{path}: metadata mean/std {text!r} is not three numbers")
        return values

    try:
        kwargs = json.loads(meta.get("timm_kwargs") or "{}")
    except json.JSONDecodeError:
        raise NetError(f"{path}: metadata timm_kwargs is not JSON") from None
    return InitWeights(
        path=path,
        state=state,
        arch=meta.get("arch") or None,
        kwargs=kwargs if isinstance(kwargs, dict) else {},
        mean=triple(meta.get("mean")),
        std=triple(meta.get("std")),
        source=meta.get("source", ""),
        note=meta.get("note", ""),
    )


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Give every BatchNorm the statistics of its real inputs without changing the eval function.

    A converted network whose BN was folded into the convolutions holds running mean 0,
    variance ≈ 1 and weight 1: in eval mode it only adds the bias, but training-mode BN would
    normalise by the batch's statistics and wreck the features. Measured in eval mode over
    ``batches`` (normalised inputs), each BN gets ``running_mean = μ``, ``running_var = σ²`` and
    weight/bias rescaled so that ``(x − μ)·w'/√(σ²+ε) + b'`` equals the old eval output;
    one pass suffices because every layer's eval output stays the same. Returns the number of
    images seen.
    """
    norms = batchnorms(model)
    sums: dict[int, list] = {}  # id(bn) → [Σx, Σx², count] per channel

    def hook(module, inputs, _output):
        x = inputs[0].detach().double()
        dims = [d for d in range(x.dim()) if d != 1]
        entry = sums.setdefault(id(module), [0.0, 0.0, 0])
        entry[0] = entry[0] + x.sum(dim=dims)
        entry[1] = entry[1] + (x * x).sum(dim=dims)
        entry[2] += x.numel() // x.shape[1]

    handles = [norm.register_forward_hook(hook) for norm in norms]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in batches:
            model(batch)
            seen += len(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    for norm in norms:
        entry = sums.get(id(norm))
        if entry is None or not norm.track_running_stats:
            continue
        total, squares, count = entry
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        old_mean = norm.running_mean.double()
        old_scale = (norm.weight.double() if norm.affine else 1.0) / torch.sqrt(
            norm.running_var.double() + norm.eps
        )
        new_std = torch.sqrt(var + norm.eps)
        if norm.affine:
            bias = norm.bias.double() + (mean - old_mean) * old_scale
            norm.weight.copy_((old_scale * new_std).to(norm.weight.dtype))
            norm.bias.copy_(bias.to(norm.bias.dtype))
        norm.running_mean.copy_(mean.to(norm.running_mean.dtype))
        norm.running_var.copy_(var.to(norm.running_var.dtype))
    return seen


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep every BatchNorm in eval mode (its statistics fixed) while the rest trains."""
    for norm in batchnorms(model):
        norm.eval()

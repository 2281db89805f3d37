"""Class activation maps (pytorch-grad-cam 1.5.7) and their overlay on the original photo.

CAMs need autograd, so they come from their own pass on a clone of the model input (a
tensor made under ``inference_mode`` cannot enter autograd). Each CAM object is used as a
context manager so that its hooks are released, and an all-zero, constant or non-finite map
falls back to Grad-CAM++ and then LayerCAM.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .card import ModelCard
from .package import resolve_module
from .preprocess import CropBox, FundusGeometry

CAM_CLASSES = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM}
FALLBACK_ORDER = ("gradcam++", "layercam")
OVERLAY_MAX_SIDE = 1200


class CamError(RuntimeError):
    """A CAM could not be computed."""


@dataclass
class CamMap:
    target_index: int  # output (logit) index explained
    heatmap: np.ndarray  # float32 [0, 1], input_size × input_size
    method: str  # the method that produced a usable map


def vit_reshape_transform(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Token sequence (B, prefix + h·w, C) → feature map (B, C, h, w), prefix tokens dropped."""
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    grid = tuple(model.patch_embed.grid_size)

    def reshape(tensor: torch.Tensor) -> torch.Tensor:
        tokens = tensor[:, prefix:, :]
        height, width = grid
        return tokens.reshape(tokens.size(0), height, width, tokens.size(2)).permute(0, 3, 1, 2)

    return reshape


def is_usable(heatmap: np.ndarray) -> bool:
    return bool(np.isfinite(heatmap).all() and float(heatmap.max() - heatmap.min()) > 1e-6)


def _run_cam(
    method: str,
    model: nn.Module,
    layers: list[nn.Module],
    reshape: Callable[[torch.Tensor], torch.Tensor] | None,
    batch: torch.Tensor,
    targets: list[int],
) -> np.ndarray:
    cam_class = CAM_CLASSES[method]
    with cam_class(model=model, target_layers=layers, reshape_transform=reshape) as cam:
        try:
            maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(t) for t in targets])
        except IndexError as exc:
            # BaseCAM.__exit__ swallows IndexError (prints it); re-raise as our own error.
            raise CamError(f"{method} failed: {exc}") from exc
    return np.asarray(maps, dtype=np.float32)


def compute_cams(
    model: nn.Module,
    card: ModelCard,
    image_tensor: torch.Tensor,
    targets: Sequence[int],
    *,
    methods: Sequence[str] | None = None,
) -> list[CamMap]:
    """One heatmap per target output index for ONE image (``C×H×W`` or ``1×C×H×W``)."""
    if not targets:
        return []
    if image_tensor.dim() == 3:
        image_tensor = image_tensor.unsqueeze(0)
    device = next(model.parameters()).device
    layers = [resolve_module(model, path) for path in card.cam.target_layers]
    reshape = vit_reshape_transform(model) if card.cam.reshape == "vit" else None
    chain = list(methods) if methods else [card.cam.method]
    if methods is None:
        chain += [m for m in FALLBACK_ORDER if m not in chain]
    size = card.input_size
    results: dict[int, CamMap] = {}
    pending = list(dict.fromkeys(targets))
    with torch.inference_mode(False), torch.enable_grad():
        # A fresh leaf that requires grad: parameters are frozen, the graph hangs off the input.
        base = image_tensor.detach().clone().to(device=device, dtype=torch.float32)
        if device.type == "cuda":
            base = base.contiguous(memory_format=torch.channels_last)
        for method in chain:
            if not pending:
                break
            batch = base.expand(len(pending), -1, -1, -1).clone().requires_grad_(True)
            maps = _run_cam(method, model, layers, reshape, batch, pending)
            still = []
            for target, heatmap in zip(pending, maps, strict=True):
                if heatmap.shape != (size, size):
                    heatmap = cv2.resize(heatmap, (size, size), interpolation=cv2.INTER_LINEAR)
                if is_usable(heatmap):
                    results[target] = CamMap(
                        target, np.clip(heatmap, 0, 1).astype(np.float32), method
                    )
                else:
                    still.append(target)
            pending = still
    for target in pending:
        results[target] = CamMap(target, np.zeros((size, size), np.float32), "none")
    return [results[t] for t in dict.fromkeys(targets)]


def heatmap_to_photo(
    heatmap: np.ndarray,
    box: CropBox,
    geometry: FundusGeometry,
    out_size: tuple[int, int],
) -> np.ndarray:
    """Undo resize / pad / crop: the model-space heatmap on a ``(width, height)`` photo grid."""
    out_w, out_h = out_size
    fx, fy = out_w / geometry.width, out_h / geometry.height
    size = heatmap.shape[0]
    # Model pixel (u, v) sits at original (x0 + u·bw/size, y0 + v·bh/size).
    matrix = np.array(
        [
            [box.width / size * fx, 0.0, box.x0 * fx],
            [0.0, box.height / size * fy, box.y0 * fy],
        ],
        dtype=np.float64,
    )
    # Map pixel centres, not corners.
    matrix[0, 2] += 0.5 * matrix[0, 0] - 0.5
    matrix[1, 2] += 0.5 * matrix[1, 1] - 0.5
    warped = cv2.warpAffine(
        heatmap.astype(np.float32),
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    if geometry.found:
        # The FOV mask drawn directly on the output grid (no heat outside the fundus).
        mask = np.zeros((out_h, out_w), np.uint8)
        centre = (round(geometry.cx * fx), round(geometry.cy * fy))
        cv2.circle(mask, centre, max(1, round(geometry.radius * fx)), 1, thickness=-1)
        warped *= mask
    return np.clip(warped, 0.0, 1.0)


def overlay_size(width: int, height: int, max_side: int = OVERLAY_MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_overlay(
    photo: Image.Image | np.ndarray,
    heatmap: np.ndarray,
    box: CropBox,
    geometry: FundusGeometry,
    *,
    max_side: int = OVERLAY_MAX_SIDE,
    alpha: float = 0.55,
) -> bytes:
    """PNG bytes: the photo (downscaled to ``max_side``) with the heatmap blended in JET colours.

    ``photo`` may be the original or a copy already downscaled with ``overlay_base`` (cheaper
    when one photo gets several overlays).
    """
    array = np.asarray(photo)
    out_w, out_h = overlay_size(geometry.width, geometry.height, max_side)
    base = (
        cv2.resize(array, (out_w, out_h), interpolation=cv2.INTER_AREA)
        if (array.shape[1], array.shape[0]) != (out_w, out_h)
        else array
    )
    heat = heatmap_to_photo(heatmap, box, geometry, (out_w, out_h))
    colours = cv2.cvtColor(
        cv2.applyColorMap(np.uint8(np.round(heat * 255)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB
    )
    # Cold areas keep the photo: the blend weight follows the heat.
    weight = (alpha * heat)[..., None]
    blended = base.astype(np.float32) * (1 - weight) + colours.astype(np.float32) * weight
    out = Image.fromarray(np.clip(np.round(blended), 0, 255).astype(np.uint8), mode="RGB")
    buffer = io.BytesIO()
    # Level 1: a third of level 3's time on camera photos, for a slightly larger file.
    out.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def overlay_base(
    photo: Image.Image | np.ndarray, geometry: FundusGeometry, *, max_side: int = OVERLAY_MAX_SIDE
) -> np.ndarray:
    """The photo downscaled once to the overlay size, to draw several heatmaps on."""
    array = np.asarray(photo)
    out_w, out_h = overlay_size(geometry.width, geometry.height, max_side)
    if (array.shape[1], array.shape[0]) == (out_w, out_h):
        return array
    return cv2.resize(array, (out_w, out_h), interpolation=cv2.INTER_AREA)

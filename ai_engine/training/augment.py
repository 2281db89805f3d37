"""Augmentation as batched torch ops on the device that trains (CUDA or CPU).

The uint8 squares of the training split live as one ``N×3×S×S`` tensor on the device; each
step gathers a batch, warps it with one affine grid per image (rotation through 360°, flips,
scale, shift), jitters gamma/contrast/brightness inside the fundus and keeps the black
surround black, so no photo is decoded or copied from the host during training. Randomness
comes from a :class:`torch.Generator` on the same device, so a run is repeatable per device
and seed, and a checkpoint restores it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

DARK = 8.0 / 255.0  # below this in every channel a pixel is surround, not fundus


@dataclass(frozen=True)
class TensorAugment:
    rotate: float = 180.0  # degrees, ± (180 = any angle: a fundus has no "up")
    hflip: float = 0.5
    vflip: float = 0.5
    scale: float = 0.10  # ±
    shift: float = 0.05  # fraction of the side, ±
    brightness: float = 0.2
    contrast: float = 0.2
    gamma: float = 0.2

    def scaled_photometric(self, factor: float) -> TensorAugment:
        """The same geometry with brightness/contrast/gamma jitter scaled by ``factor``."""
        return replace(
            self,
            brightness=self.brightness * factor,
            contrast=self.contrast * factor,
            gamma=self.gamma * factor,
        )

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 ``N×3×S×S`` → float ``N×3×S×S`` in [0, 1], augmented."""
        n = batch.shape[0]
        device = batch.device

        def uniform(low_high: float, *shape: int) -> torch.Tensor:
            return (
                torch.rand(shape or (n,), generator=generator, device=device) * 2 - 1
            ) * low_high

        angle = uniform(self.rotate) * (math.pi / 180.0)
        zoom = 1.0 + uniform(self.scale)
        flip_x = torch.where(
            torch.rand(n, generator=generator, device=device) < self.hflip, -1.0, 1.0
        )
        flip_y = torch.where(
            torch.rand(n, generator=generator, device=device) < self.vflip, -1.0, 1.0
        )
        shift = uniform(2.0 * self.shift, n, 2)  # normalised coordinates span 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [
                torch.stack([cos * flip_x, -sin * flip_y, shift[:, 0]], dim=1),
                torch.stack([sin * flip_x, cos * flip_y, shift[:, 1]], dim=1),
            ],
            dim=1,
        )
        images = batch.float().div_(255.0)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(
            images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        mask = (images.amax(dim=1, keepdim=True) > DARK).to(images.dtype)
        gamma = torch.exp(uniform(self.gamma)).view(n, 1, 1, 1)
        images = images.clamp_min(1e-6).pow(gamma)
        area = mask.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mean = (images * mask).sum(dim=(2, 3), keepdim=True) / area
        contrast = (1.0 + uniform(self.contrast)).view(n, 1, 1, 1)
        brightness = (1.0 + uniform(self.brightness)).view(n, 1, 1, 1)
        images = ((images - mean) * contrast + mean) * brightness
        return (images * mask).clamp_(0.0, 1.0)


def normalise_float(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Float ``N×3×H×W`` in [0, 1] → the network's input (the card's mean/std)."""
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean_t) / std_t


def mix_batch(
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    mixup: float,
    cutmix: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (``mixup`` = Beta α) or CutMix (``cutmix`` = Beta α), one of them per batch at random
    when both are on. Returns (images, targets, partner targets, λ): the loss is
    ``λ·loss(targets) + (1 − λ)·loss(partner)``. With both 0 the batch is returned unchanged."""
    if mixup <= 0 and cutmix <= 0:
        return images, targets, targets, 1.0
    device = images.device
    draw = torch.rand(2, generator=generator, device=device).tolist()
    use_cutmix = cutmix > 0 and (mixup <= 0 or draw[0] < 0.5)
    alpha = cutmix if use_cutmix else mixup
    # Beta(α, α) from two Gamma draws with the run's own generator.
    gammas = torch._standard_gamma(torch.full((2,), float(alpha), device=device), generator)
    lam = float(gammas[0] / gammas.sum())
    order = torch.randperm(images.shape[0], generator=generator, device=device)
    if use_cutmix:
        size = images.shape[-1]
        cut = int(round(size * math.sqrt(1.0 - lam)))
        cy, cx = (torch.randint(0, size, (2,), generator=generator, device=device)).tolist()
        y0, y1 = max(cy - cut // 2, 0), min(cy + cut - cut // 2, size)
        x0, x1 = max(cx - cut // 2, 0), min(cx + cut - cut // 2, size)
        images = images.clone()
        images[:, :, y0:y1, x0:x1] = images[order, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (size * size)
    else:
        images = images * lam + images[order] * (1.0 - lam)
    return images, targets, targets[order], lam

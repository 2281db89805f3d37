"""A contact sheet of class activation maps: for each label, test photos beside their CAM.

Each pair is the model's own input square (after the fundus crop) and the same square with
the CAM of the photo's TRUE label blended in (JET colours), captioned with the true label,
the decision and the probability of the true label. The photos are drawn per label in a
seeded random order, so the sheet is the same every time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ai_engine.inference.cam import compute_cams
from ai_engine.inference.package import ModelPackage

from .data import normalise_batch

CELL = 160  # pixels per photo in the sheet
PER_ROW = 5  # photo/CAM pairs per row


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 16), (0, 0, 0), thickness=-1)
    cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
    return tile


def cam_sheet(
    package: ModelPackage,
    squares: np.ndarray,
    targets: np.ndarray,
    probs: np.ndarray,
    out: str | Path,
    *,
    per_label: int = 20,
    seed: int = 0,
) -> dict[str, int]:
    """Write the sheet as PNG to ``out``; returns the number of photos shown per label."""
    card = package.card
    codes = [label.code for label in card.labels]
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    shown: dict[str, int] = {}
    for k, code in enumerate(codes):
        members = np.flatnonzero(targets[:, k] > 0.5)
        chosen = sorted(rng.permutation(members)[:per_label].tolist())
        shown[code] = len(chosen)
        header = np.zeros((22, PER_ROW * 2 * CELL, 3), np.uint8)
        cv2.putText(
            header,
            f"true label {code}: {len(chosen)} photos (photo | CAM of {code})",
            (6, 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
        )
        rows.append(header)
        pairs = []
        for i in chosen:
            square = np.array(squares[i])  # a writable copy of the (memory-mapped) cache
            tensor = normalise_batch(
                torch.from_numpy(square).permute(2, 0, 1)[None], card.mean, card.std
            )[0]
            output = 0 if card.task == "binary" else k
            heat = compute_cams(package.model, card, tensor.to(package.device), [output])[0]
            heatmap = cv2.resize(heat.heatmap, (CELL, CELL))
            photo = cv2.resize(square, (CELL, CELL), interpolation=cv2.INTER_AREA)
            colour = cv2.applyColorMap(np.uint8(np.clip(heatmap, 0, 1) * 255), cv2.COLORMAP_JET)
            colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
            blend = cv2.addWeighted(photo, 0.5, colour, 0.5, 0.0)
            decided = codes[int(probs[i].argmax())] if card.task == "multiclass" else "-"
            _caption(photo, f"#{i} true {code} pred {decided}")
            _caption(blend, f"p({code})={probs[i, k]:.2f} {heat.method}")
            pairs.append(np.hstack([photo, blend]))
        for start in range(0, len(pairs), PER_ROW):
            chunk = pairs[start : start + PER_ROW]
            chunk += [np.zeros_like(pairs[0])] * (PER_ROW - len(chunk))
            rows.append(np.hstack(chunk))
    sheet = np.vstack(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return shown

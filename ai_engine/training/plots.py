"""ROC and confusion-matrix PNGs: matplotlib (a grad-cam dependency) when it imports, else a
plain Pillow drawing with the same content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

Curves = dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def roc_png(curves: Curves, path: Path) -> None:
    """One panel per package, one curve per label (AUC in the legend)."""
    plt = _pyplot()
    if plt is None:
        _roc_pillow(curves, path)
        return
    panels = max(1, len(curves))
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.5), squeeze=False)
    for ax, (title, by_label) in zip(axes[0], curves.items(), strict=False):
        for code, (fpr, tpr, auc) in by_label.items():
            ax.plot(fpr, tpr, label=f"{code} (AUC {auc:.3f})" if auc is not None else code)
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="1 − specificity", ylabel="sensitivity")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_png(confusion: dict[str, Any], path: Path, *, title: str) -> None:
    """A K×K matrix (multiclass) or one 2×2 matrix per label (multilabel/binary)."""
    matrices = _matrices(confusion)
    plt = _pyplot()
    if plt is None:
        _confusion_pillow(matrices, path, title)
        return
    panels = len(matrices)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels + 0.8, 3.6), squeeze=False)
    for ax, (name, labels, matrix) in zip(axes[0], matrices, strict=True):
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(name, fontsize=9)
        peak = matrix.max() or 1
        for (row, col), value in np.ndenumerate(matrix):
            colour = "white" if value > peak / 2 else "black"
            ax.text(col, row, str(value), ha="center", va="center", color=colour)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _matrices(confusion: dict[str, Any]) -> list[tuple[str, list[str], np.ndarray]]:
    if "matrix" in confusion:
        return [("", list(confusion["labels"]), np.asarray(confusion["matrix"], dtype=int))]
    return [
        (code, ["neg", "pos"], np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=int))
        for code, c in confusion.items()
    ]


_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _roc_pillow(curves: Curves, path: Path) -> None:
    side, pad = 360, 40
    image = Image.new("RGB", (max(1, len(curves)) * (side + 2 * pad), side + 2 * pad), "white")
    draw = ImageDraw.Draw(image)
    for panel, (title, by_label) in enumerate(curves.items()):
        x0 = panel * (side + 2 * pad) + pad
        draw.rectangle([x0, pad, x0 + side, pad + side], outline="black")
        draw.line([x0, pad + side, x0 + side, pad], fill="grey")
        draw.text((x0, 8), title, fill="black")
        for i, (code, (fpr, tpr, auc)) in enumerate(by_label.items()):
            colour = _COLOURS[i % len(_COLOURS)]
            points = [(x0 + f * side, pad + side - t * side) for f, t in zip(fpr, tpr, strict=True)]
            draw.line(points, fill=colour, width=2)
            text = f"{code} AUC {auc:.3f}" if auc is not None else code
            draw.text((x0 + side - 120, pad + side - 16 * (i + 1)), text, fill=colour)
    image.save(path)


def _confusion_pillow(
    matrices: list[tuple[str, list[str], np.ndarray]], path: Path, title: str
) -> None:
    cell, pad = 48, 40
    width = sum(len(labels) * cell + 2 * pad for _, labels, _ in matrices)
    height = max(len(labels) for _, labels, _ in matrices) * cell + 2 * pad + 16
    image = Image.new("RGB", (max(width, 200), height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((4, 4), title, fill="black")
    x0 = pad
    for name, labels, matrix in matrices:
        draw.text((x0, 20), name, fill="black")
        peak = matrix.max() or 1
        for (row, col), value in np.ndenumerate(matrix):
            shade = int(255 - 180 * value / peak)
            box = [x0 + col * cell, pad + row * cell, x0 + (col + 1) * cell, pad + (row + 1) * cell]
            draw.rectangle(box, fill=(shade, shade, 255), outline="black")
            draw.text((box[0] + 6, box[1] + 18), str(value), fill="black")
        for i, label in enumerate(labels):
            draw.text((x0 + i * cell + 6, pad - 12), label, fill="black")
            draw.text((x0 - 34, pad + i * cell + 18), label, fill="black")
        x0 += len(labels) * cell + 2 * pad
    image.save(path)

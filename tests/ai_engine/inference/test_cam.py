from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import ai_engine.inference.cam as cam_module
from ai_engine.inference.cam import compute_cams, heatmap_to_photo, render_overlay
from ai_engine.inference.package import ModelPackage
from ai_engine.inference.preprocess import CropBox, FundusGeometry


def no_hooks_left(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


@pytest.fixture
def package(make_package) -> ModelPackage:
    return ModelPackage.load(make_package(), "cpu")


def image_tensor(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_methods_give_unit_maps_and_release_hooks(package, method: str) -> None:
    maps = compute_cams(package.model, package.card, image_tensor(), [3, 6], methods=[method])
    assert [m.target_index for m in maps] == [3, 6]
    for cam in maps:
        assert cam.heatmap.shape == (64, 64)
        assert cam.heatmap.dtype == np.float32
        assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
        assert cam.method == method
        assert float(cam.heatmap.max()) == pytest.approx(1.0, abs=1e-3)
    assert no_hooks_left(package.model)
    assert all(p.grad is None for p in package.model.parameters())


def test_a_real_all_zero_gradcam_map_falls_back(package) -> None:
    # With this seed, plain Grad-CAM for output 1 is all zero (negative weights under ReLU).
    plain = compute_cams(package.model, package.card, image_tensor(), [1], methods=["gradcam"])[0]
    assert plain.method == "none"
    assert plain.heatmap.max() == 0.0
    rescued = compute_cams(package.model, package.card, image_tensor(), [1])[0]
    assert rescued.method == "gradcam++"
    assert float(rescued.heatmap.max()) == pytest.approx(1.0, abs=1e-3)


def test_input_made_under_inference_mode_is_accepted(package) -> None:
    with torch.inference_mode():
        tensor = image_tensor() * 1.0
    maps = compute_cams(package.model, package.card, tensor, [2])
    assert maps[0].heatmap.shape == (64, 64)


def test_zero_map_falls_back_to_gradcam_plus_plus_then_layercam(package, monkeypatch) -> None:
    real = cam_module._run_cam
    calls: list[str] = []

    def flat_for(broken: set[str]):
        def run(method, *args):
            calls.append(method)
            maps = real(method, *args)
            return np.zeros_like(maps) if method in broken else maps

        return run

    monkeypatch.setattr(cam_module, "_run_cam", flat_for({"gradcam"}))
    maps = compute_cams(package.model, package.card, image_tensor(), [1])
    assert calls == ["gradcam", "gradcam++"]
    assert maps[0].method == "gradcam++"

    calls.clear()
    monkeypatch.setattr(cam_module, "_run_cam", flat_for({"gradcam", "gradcam++"}))
    assert compute_cams(package.model, package.card, image_tensor(), [1])[0].method == "layercam"

    calls.clear()
    monkeypatch.setattr(cam_module, "_run_cam", flat_for({"gradcam", "gradcam++", "layercam"}))
    fallback = compute_cams(package.model, package.card, image_tensor(), [1])[0]
    assert calls == ["gradcam", "gradcam++", "layercam"]
    assert fallback.method == "none"
    assert fallback.heatmap.max() == 0.0
    assert no_hooks_left(package.model)


def test_vit_reshape_path(make_package) -> None:
    folder = make_package(
        "vit",
        task="multiclass",
        architecture="vit_tiny_patch16_224",
        architecture_kwargs={"img_size": 64, "global_pool": "avg"},
        labels=[{"code": c, "zh": c, "en": c} for c in ("AMD", "CSC", "DR")],
        cam={"method": "gradcam", "target_layers": ["blocks.-1.norm1"], "reshape": "vit"},
    )
    package = ModelPackage.load(folder, "cpu")
    maps = compute_cams(package.model, package.card, image_tensor(), [0, 2])
    assert [m.heatmap.shape for m in maps] == [(64, 64), (64, 64)]
    assert all(m.method != "none" for m in maps)
    assert no_hooks_left(package.model)


def test_heatmap_maps_back_to_the_original_photo() -> None:
    geometry = FundusGeometry(400, 200, True, 200.0, 100.0, 100.0, 0.39, 1.0)
    box = geometry.box  # x 100..300, y 0..200
    heatmap = np.zeros((64, 64), np.float32)
    heatmap[:, :32] = 1.0  # the left half of the crop
    photo_heat = heatmap_to_photo(heatmap, box, geometry, (400, 200))
    assert photo_heat.shape == (200, 400)
    assert photo_heat[100, 150] == 1.0  # inside the circle, left half of the crop
    assert photo_heat[100, 250] == 0.0  # right half
    assert photo_heat[100, 50] == 0.0  # outside the crop
    assert photo_heat[5, 105] == 0.0  # inside the crop, outside the fundus circle


def test_overlay_png_keeps_the_aspect_ratio() -> None:
    photo = np.full((1600, 2400, 3), 90, np.uint8)
    geometry = FundusGeometry(2400, 1600, True, 1200.0, 800.0, 780.0, 0.5, 1.0)
    heatmap = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    png = render_overlay(photo, heatmap, geometry.box, geometry)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (1200, 800)
    pixels = np.asarray(image)
    assert pixels[5, 5].tolist() == [90, 90, 90]  # outside the fundus: the photo unchanged
    assert pixels[400, 600].tolist() != [90, 90, 90]  # inside: blended with the colour map


def test_square_box_stays_identical() -> None:
    box = CropBox(0, 0, 10, 10)
    assert box.squared() is box

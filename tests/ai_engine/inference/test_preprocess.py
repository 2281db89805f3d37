from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ai_engine.inference.card import parse_card
from ai_engine.inference.decode import load_fundus_image
from ai_engine.inference.preprocess import (
    CropBox,
    detect_fundus,
    fov_mask,
    model_box,
    preprocess_for_model,
    render_box,
)

from .conftest import card_dict


def synthetic_fundus(width: int, height: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.uint8)
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    image[inside] = (170, 80, 40)
    return image


def circle_iou(geometry, truth: np.ndarray, step: int = 4) -> float:
    yy, xx = np.mgrid[0 : truth.shape[0] : step, 0 : truth.shape[1] : step]
    predicted = (xx - geometry.cx) ** 2 + (yy - geometry.cy) ** 2 <= geometry.radius**2
    sampled = truth[::step, ::step]
    return float((predicted & sampled).sum() / (predicted | sampled).sum())


def test_synthetic_circle_is_found_exactly() -> None:
    geometry = detect_fundus(synthetic_fundus(300, 200, 150, 100, 90))
    assert geometry.found is True
    assert abs(geometry.cx - 150) < 1.5 and abs(geometry.cy - 100) < 1.5
    assert abs(geometry.radius - 90) < 1.5
    assert abs(geometry.fov_fraction - np.pi * 90 * 90 / (300 * 200)) < 0.01


def test_circle_clipped_by_a_tight_crop_is_fitted_on_its_rim() -> None:
    # A 400 px crop of a circle of radius 230: clipped on all four sides.
    geometry = detect_fundus(synthetic_fundus(400, 400, 200, 200, 230))
    assert geometry.found is True
    assert abs(geometry.radius - 230) < 3
    assert geometry.circle_visible < 0.95
    box = geometry.box
    assert box.x0 < 0 and box.x1 > 400  # the square reaches outside the photo (black there)


def test_black_and_flat_images_have_no_fundus() -> None:
    assert detect_fundus(np.zeros((100, 100, 3), np.uint8)).found is False
    assert detect_fundus(np.full((100, 100, 3), 128, np.uint8)).found is False


def test_render_box_pads_outside_with_black() -> None:
    image = np.full((10, 20, 3), 200, np.uint8)
    square = render_box(image, CropBox(0, -5, 20, 15), 20)
    assert square.shape == (20, 20, 3)
    assert square[:5].max() == 0 and square[15:].max() == 0
    assert square[5:15].min() == 200


def test_model_box_follows_the_preprocessing_steps() -> None:
    geometry = detect_fundus(synthetic_fundus(300, 200, 150, 100, 90))
    cropped = parse_card(card_dict())
    assert model_box(geometry, cropped) == geometry.box
    plain = parse_card(card_dict(preprocessing=["pad_square", "resize", "normalize"]))
    assert model_box(geometry, plain) == CropBox(0.0, -50.0, 300.0, 250.0)


def test_tensor_is_normalised_with_the_card() -> None:
    card = parse_card(card_dict(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], input_size=32))
    tensor, box = preprocess_for_model(np.zeros((64, 64, 3), np.uint8), card)
    assert tensor.shape == (3, 32, 32)
    assert tensor.dtype == torch.float32
    assert torch.all(tensor == -1.0)
    assert box == CropBox(0.0, 0.0, 64.0, 64.0)


@pytest.mark.parametrize("step", ["clahe", "ben_graham"])
def test_optional_filters_run(step: str) -> None:
    card = parse_card(
        card_dict(preprocessing=["fundus_crop", "pad_square", "resize", step, "normalize"])
    )
    tensor, _ = preprocess_for_model(synthetic_fundus(120, 100, 60, 50, 45), card)
    assert tensor.shape == (3, 64, 64)
    assert torch.isfinite(tensor).all()


def test_reference_photo_circle(data_dir) -> None:
    image = load_fundus_image(data_dir / "reference" / "retina_cc0.jpg")
    geometry = detect_fundus(image)
    assert geometry.found is True
    assert abs(geometry.cx - 705) < 15 and abs(geometry.cy - 705) < 15
    assert 680 < geometry.radius < 720


@pytest.mark.parametrize("number", [1, 10])
def test_camera_resolution_circle_matches_the_fov_mask(data_dir, number: int) -> None:
    image = load_fundus_image(data_dir / "highres" / f"{number}.jpg")
    geometry = detect_fundus(image)
    truth = (
        np.asarray(
            Image.open(data_dir / "highres" / "fov_masks" / f"{number}_mask_orig.png").convert("L")
        )
        > 0
    )
    assert geometry.found is True
    assert circle_iou(geometry, truth) >= 0.9


def test_400px_crop_circle(data_dir) -> None:
    image = load_fundus_image(data_dir / "fundus/images/eyepacs/grade0/11594_left.jpeg")
    geometry = detect_fundus(image)
    assert geometry.found is True
    assert geometry.radius > 200  # bigger than the crop: clipped on every side
    mask = fov_mask(geometry, geometry.box, 64)
    assert mask[32, 32] and not mask[0, 0]

from __future__ import annotations

import numpy as np
import pytest

from ai_engine.inference.areas import Landmarks, extract_areas, locate_landmarks
from ai_engine.inference.preprocess import FundusGeometry, render_box

GEOMETRY = FundusGeometry(200, 200, True, 100.0, 100.0, 100.0, 0.785, 1.0)
BOX = GEOMETRY.box
LEFT_DISC = Landmarks(
    centre=(0.5, 0.5), radius=0.5, disc=(0.25, 0.5), disc_found=True, macula=(0.6, 0.5)
)
NO_DISC = Landmarks(centre=(0.5, 0.5), radius=0.5, disc=None, disc_found=False, macula=(0.5, 0.5))


def blob(x: float, y: float, size: int = 128, sigma: float = 0.03) -> np.ndarray:
    coords = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)).astype(np.float32)


@pytest.mark.parametrize(
    ("x", "y", "landmarks", "code"),
    [
        (0.25, 0.5, LEFT_DISC, "optic_disc"),
        (0.6, 0.5, LEFT_DISC, "macula"),
        (0.5, 0.08, LEFT_DISC, "periphery"),
        (0.42, 0.3, LEFT_DISC, "vascular_arcade"),
        (0.5, 0.78, NO_DISC, "posterior_pole"),
    ],
)
def test_hot_spot_is_named_by_zone(x, y, landmarks, code) -> None:
    areas = extract_areas(blob(x, y), landmarks, GEOMETRY, BOX)
    assert [a.code for a in areas] == [code]
    assert areas[0].peak == pytest.approx(1.0, abs=0.02)
    assert areas[0].centroid == pytest.approx((x, y), abs=0.02)


def test_names_in_both_languages() -> None:
    area = extract_areas(blob(0.5, 0.08), LEFT_DISC, GEOMETRY, BOX)[0]
    assert (area.zh, area.en) == ("视网膜周边", "periphery")


def test_two_hot_spots_hottest_first() -> None:
    heat = np.maximum(blob(0.25, 0.5, sigma=0.05), 0.8 * blob(0.6, 0.5, sigma=0.05))
    areas = extract_areas(heat, LEFT_DISC, GEOMETRY, BOX)
    assert [a.code for a in areas] == ["optic_disc", "macula"]


def test_empty_and_tiny_maps_have_no_areas() -> None:
    assert extract_areas(np.zeros((64, 64), np.float32), LEFT_DISC, GEOMETRY, BOX) == []
    speck = np.zeros((128, 128), np.float32)
    speck[64, 64] = 1.0
    assert extract_areas(speck, LEFT_DISC, GEOMETRY, BOX) == []


def synthetic_photo(disc_x: float | None) -> np.ndarray:
    yy, xx = np.mgrid[0:200, 0:200]
    photo = np.zeros((200, 200, 3), np.uint8)
    photo[(xx - 100) ** 2 + (yy - 100) ** 2 <= 100**2] = (150, 70, 30)
    if disc_x is not None:
        photo[(xx - disc_x * 200) ** 2 + (yy - 100) ** 2 <= 13**2] = (250, 220, 160)
    return photo


def test_disc_is_found_and_macula_placed_temporally() -> None:
    square = render_box(synthetic_photo(0.25), BOX, 256)
    landmarks = locate_landmarks(square, GEOMETRY, BOX, eye=None)
    assert landmarks.disc_found is True
    assert landmarks.disc == pytest.approx((0.25, 0.5), abs=0.02)
    assert landmarks.macula == pytest.approx((0.25 + 2.5 * 0.14, 0.5), abs=0.02)


@pytest.mark.parametrize(("eye", "disc_x"), [("OD", 0.85), ("OS", 0.15), (None, None)])
def test_eye_side_is_the_fallback(eye, disc_x) -> None:
    square = render_box(synthetic_photo(None), BOX, 256)
    landmarks = locate_landmarks(square, GEOMETRY, BOX, eye=eye)
    assert landmarks.disc_found is False
    assert landmarks.macula == (0.5, 0.5)
    if disc_x is None:
        assert landmarks.disc is None
    else:
        assert landmarks.disc == pytest.approx((disc_x, 0.5))

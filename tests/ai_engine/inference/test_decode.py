from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ai_engine.inference.decode import ImageDecodeError, load_fundus_image, load_working_copy


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (32, 24), (0, 255, 255, 0)), "JPEG", quality=95)
    image = load_fundus_image(data)
    assert image.mode == "RGB"
    assert image.size == (32, 24)
    red, green, blue = np.asarray(image)[12, 16]
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_png_is_scaled_not_saturated() -> None:
    array = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(array), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = load_fundus_image(data)
    assert np.asarray(image)[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.asarray(image)[0, 2].tolist() == [128, 128, 128]


def test_rgba_is_flattened_onto_black() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255  # transparent white
    rgba[0, 0] = (200, 100, 50, 255)
    image = load_fundus_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert np.asarray(image)[0, 0].tolist() == [200, 100, 50]
    assert np.asarray(image)[3, 3].tolist() == [0, 0, 0]


def test_grayscale_and_palette_become_rgb() -> None:
    gray = load_fundus_image(encode(Image.new("L", (5, 5), 77), "PNG"))
    assert np.asarray(gray)[2, 2].tolist() == [77, 77, 77]
    palette = load_fundus_image(encode(Image.new("RGB", (5, 5), (10, 20, 30)).convert("P"), "PNG"))
    assert palette.mode == "RGB"


def test_exif_orientation_is_applied() -> None:
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encode(Image.fromarray(array), "JPEG", quality=95, exif=exif.tobytes())
    image = load_fundus_image(data)
    assert image.size == (20, 40)
    top = np.asarray(image)[2, 10]
    assert top[0] > 200 and top[1] < 60  # the red half is now on top


def test_truncated_jpeg_is_refused() -> None:
    data = encode(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)),
        "JPEG",
    )
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        load_fundus_image(data[: len(data) // 2])


def test_not_an_image_and_empty() -> None:
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        load_fundus_image(b"%PDF-1.7 hello")
    with pytest.raises(ImageDecodeError, match="the file is empty"):
        load_fundus_image(b"")


def test_pixel_limit_is_per_call() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageDecodeError, match="100x100"):
        load_fundus_image(data, max_pixels=9_999)
    assert load_fundus_image(data, max_pixels=10_000).size == (100, 100)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot read the file"):
        load_fundus_image(tmp_path / "nope.jpg")


def test_16_bit_rgb_png_keeps_the_high_byte() -> None:
    import cv2

    bgr = np.zeros((4, 4, 3), np.uint16)
    bgr[..., 2] = 65535
    bgr[..., 1] = 32896
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    image = load_fundus_image(encoded.tobytes())
    assert np.asarray(image)[0, 0].tolist() == [255, 128, 0]


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return Image.fromarray(np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8))


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_sides() -> None:
    data = encode(_gradient(4800, 3200), "JPEG", quality=90)
    image, scale = load_working_copy(data, min_sides=(1024, 768))
    assert (image.size, scale) == ((1200, 800), 4.0)  # 1/8 would be 600×400: too small
    full, scale = load_working_copy(data, min_sides=(4000, 3000))
    assert (full.size, scale) == ((4800, 3200), 1.0)
    # the reduced decode shows the same picture
    reduced = np.asarray(full.resize((1200, 800), Image.Resampling.BOX), np.float32)
    assert np.abs(np.asarray(image, np.float32) - reduced).mean() < 3


def test_pngs_and_small_jpegs_are_decoded_in_full() -> None:
    for data in (
        encode(_gradient(3000, 2000), "PNG"),
        encode(_gradient(1500, 1000), "JPEG", quality=90),
    ):
        image, scale = load_working_copy(data, min_sides=(1024, 768))
        assert scale == 1.0 and image.size == Image.open(io.BytesIO(data)).size


def test_a_rotated_large_jpeg_keeps_its_orientation_and_scale() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(_gradient(4800, 3200), "JPEG", quality=90, exif=exif.tobytes())
    image, scale = load_working_copy(data, min_sides=(1024, 768))
    assert (image.size, scale) == ((800, 1200), 4.0)

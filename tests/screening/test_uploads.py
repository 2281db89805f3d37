"""Tests for screening.uploads: the fundus upload validator and storage naming."""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.utils import translation
from PIL import Image, ImageFile

from screening import uploads
from screening.uploads import ValidatedUpload, fundus_storage_name, validate_fundus_upload
from tests.screening import hostile_files as hf

Generator = Callable[[], tuple[str, bytes]]


def _memory_upload(name: str, data: bytes) -> File:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _temporary_upload(name: str, data: bytes) -> File:
    upload = TemporaryUploadedFile(name, "image/jpeg", len(data), None)
    upload.write(data)
    upload.seek(0)
    return upload


WRAPPERS = {"memory": _memory_upload, "temporary": _temporary_upload}


@pytest.fixture(params=["memory", "temporary", "disk_file"])
def make_upload(request, tmp_path):
    """Build the kinds of file objects entry points hand to the validator."""
    opened = []

    def make(name: str, data: bytes) -> File:
        if request.param == "disk_file":
            path = tmp_path / "upload.bin"
            path.write_bytes(data)
            handle = path.open("rb")
            opened.append(handle)
            return File(handle, name=name)
        upload = WRAPPERS[request.param](name, data)
        opened.append(upload)
        return upload

    yield make
    for handle in opened:
        handle.close()


def _reject(generator: Generator, **limits: int) -> ValidationError:
    name, data = generator()
    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(_memory_upload(name, data), **limits)
    return caught.value


# --------------------------------------------------------------------------- accepted files

ACCEPTED = [
    # generator, format, extension, width, height, mode
    (hf.valid_jpeg, "JPEG", ".jpg", 512, 512, "RGB"),
    (hf.valid_png, "PNG", ".png", 512, 512, "RGB"),
    (hf.valid_tiff, "TIFF", ".tif", 512, 512, "RGB"),
    (hf.cmyk_jpeg, "JPEG", ".jpg", 512, 512, "CMYK"),
    (hf.gray16_png, "PNG", ".png", 512, 512, "I;16"),
    (hf.rgb16_tiff, "TIFF", ".tif", 256, 256, "RGB"),
    (hf.rgba_png, "PNG", ".png", 512, 512, "RGBA"),
    (hf.exif_rotated_jpeg, "JPEG", ".jpg", 400, 600, "RGB"),
    (hf.exif_rotated_tiff, "TIFF", ".tif", 300, 512, "RGB"),
    # Trailing data after a complete image is tolerated (see the module docstring).
    (hf.jpeg_with_garbage_tail, "JPEG", ".jpg", 512, 512, "RGB"),
    (hf.jpeg_html_polyglot, "JPEG", ".jpg", 512, 512, "RGB"),
    (hf.jpeg_zip_polyglot, "JPEG", ".jpg", 512, 512, "RGB"),
    (hf.jpeg_metadata_payloads, "JPEG", ".jpg", 512, 512, "RGB"),
    (hf.unicode_name_jpeg, "JPEG", ".jpg", 512, 512, "RGB"),
]


@pytest.mark.parametrize(
    ("generator", "image_format", "extension", "width", "height", "mode"),
    ACCEPTED,
    ids=[row[0].__name__ for row in ACCEPTED],
)
def test_accepted_file_is_described_exactly(
    make_upload, generator, image_format, extension, width, height, mode
):
    name, data = generator()
    upload = make_upload(name, data)

    result = validate_fundus_upload(upload)

    assert result == ValidatedUpload(
        format=image_format,
        extension=extension,
        width=width,
        height=height,
        mode=mode,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        original_name=name,
    )
    assert upload.tell() == 0
    assert upload.read() == data


# --------------------------------------------------------------------------- rejected files

NOT_AN_IMAGE = "This file is not an image. Upload a JPEG, PNG or TIFF fundus photo."
MULTIPLE = (
    "This file contains more than one picture (a multi-page TIFF, an animated PNG or a "
    "multi-picture JPEG). Upload each photo as a separate file."
)


def _corrupt(image_format: str) -> str:
    return (
        f"This {image_format} file is damaged or incomplete and could not be read. "
        "Copy or export it from the camera again."
    )


PNG_TEXT_TOO_LARGE = (
    "This PNG file carries a text (metadata) block of more than 1 MB, which a fundus photo never "
    "needs, so it was not read. Export the photo again without added text or metadata."
)


def _unsupported(detected: str) -> str:
    return f"This file is not a JPEG, PNG or TIFF image (detected: {detected})."


REJECTED = [
    # generator, code, exact English message
    (hf.empty, "empty", "The file is empty."),
    (hf.truncated_jpeg, "corrupt", _corrupt("JPEG")),
    (hf.truncated_png, "corrupt", _corrupt("PNG")),
    (hf.jpeg_header_only, "corrupt", _corrupt("JPEG")),
    (hf.ztxt_bomb_png, "png_text_too_large", PNG_TEXT_TOO_LARGE),
    (hf.itxt_bomb_png, "png_text_too_large", PNG_TEXT_TOO_LARGE),
    # Pillow itself refuses these headers (error above 2× its limit, warning above it).
    (hf.bomb_png, "too_many_pixels", "The image is larger than the limit of 40 megapixels."),
    (hf.huge_header_png, "too_many_pixels", "The image is larger than the limit of 40 megapixels."),
    (
        hf.over_limit_png,
        "too_many_pixels",
        "The image is 8000 × 6000 pixels (48 megapixels); the limit is 40 megapixels.",
    ),
    (hf.svg_as_jpg, "not_an_image", NOT_AN_IMAGE),
    (hf.html_as_jpg, "not_an_image", NOT_AN_IMAGE),
    (hf.pdf_as_jpg, "not_an_image", NOT_AN_IMAGE),
    (hf.zip_as_jpg, "not_an_image", NOT_AN_IMAGE),
    (hf.text_as_jpg, "not_an_image", NOT_AN_IMAGE),
    (hf.eps_as_jpg, "unsupported_format", _unsupported("EPS")),
    (hf.fits_as_jpg, "unsupported_format", _unsupported("FITS")),
    (hf.gif_html_polyglot, "unsupported_format", _unsupported("GIF")),
    (hf.animated_gif, "unsupported_format", _unsupported("GIF")),
    (hf.static_gif, "unsupported_format", _unsupported("GIF")),
    (hf.multipage_tiff, "multiple_frames", MULTIPLE),
    (hf.apng, "multiple_frames", MULTIPLE),
    (hf.mpo_jpeg, "multiple_frames", MULTIPLE),
    (
        hf.tiny_png,
        "too_small",
        "The image is 1 × 1 pixels; each side must be at least 256 pixels.",
    ),
    (
        hf.small_jpeg,
        "too_small",
        "The image is 100 × 100 pixels; each side must be at least 256 pixels.",
    ),
]


@pytest.mark.parametrize(
    ("generator", "code", "message"), REJECTED, ids=[row[0].__name__ for row in REJECTED]
)
def test_rejected_file_raises_exact_code_and_message(make_upload, generator, code, message):
    name, data = generator()
    upload = make_upload(name, data)

    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(upload)

    assert caught.value.code == code
    assert caught.value.messages == [message]
    assert upload.tell() == 0
    assert not upload.closed


def test_an_oversized_png_text_chunk_is_explained_in_chinese():
    name, data = hf.ztxt_bomb_png()

    with translation.override("zh-hans"), pytest.raises(ValidationError) as caught:
        validate_fundus_upload(SimpleUploadedFile(name, data))

    assert caught.value.messages == [
        "此 PNG 文件带有超过 1 MB 的文本（元数据）块，眼底照片不需要这些内容，因此未读取该文件。"
        "请重新导出照片，不要附加文本或元数据。"
    ]


def test_every_hostile_generator_is_covered():
    covered = {row[0].__name__ for row in ACCEPTED + REJECTED}
    covered.add(hf.traversal_name_jpeg.__name__)  # tested with the names below

    assert covered == set(hf.ALL)


def test_pixel_limit_is_checked_before_any_decoding(monkeypatch):
    def fail_load(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_load)

    error = _reject(hf.over_limit_png)

    assert error.code == "too_many_pixels"


def test_oversized_file_is_refused_from_its_declared_size():
    data = b"x" * (3 * 1024 * 1024 + 300 * 1024)

    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(_memory_upload("big.jpg", data), max_bytes=2 * 1024 * 1024)

    assert caught.value.code == "too_large"
    assert caught.value.messages == ["The file is 3.3 MB; the limit is 2 MB."]


def test_file_just_over_the_limit_never_prints_as_equal_to_it():
    data = b"x" * (2 * 1024 * 1024 + 1)

    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(_memory_upload("big.jpg", data), max_bytes=2 * 1024 * 1024)

    assert caught.value.messages == ["The file is 2.1 MB; the limit is 2 MB."]


def test_file_larger_than_its_declared_size_is_not_read_past_the_limit():
    stream = io.BytesIO(b"x" * (3 * 1024 * 1024))
    upload = File(stream, name="liar.jpg")
    upload.size = 100  # e.g. a wrapper that reports a stale size

    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(upload, max_bytes=1024 * 1024)

    assert caught.value.code == "too_large"
    assert caught.value.messages == ["The file is larger than the limit of 1 MB."]
    assert upload.tell() == 0


# --------------------------------------------------------------------------- settings


def test_settings_lower_the_byte_limit(settings):
    settings.FUNDUS_UPLOAD_MAX_BYTES = 20 * 1024
    name, data = hf.valid_jpeg()

    with pytest.raises(ValidationError) as caught:
        validate_fundus_upload(_memory_upload(name, data))

    assert caught.value.code == "too_large"
    assert caught.value.messages[0].endswith("; the limit is 20 KB.")


def test_settings_lower_the_pixel_limit(settings):
    settings.FUNDUS_UPLOAD_MAX_PIXELS = 512 * 512 - 1

    error = _reject(hf.valid_jpeg)

    assert error.code == "too_many_pixels"
    assert error.messages == [
        "The image is 512 × 512 pixels (0.3 megapixels); the limit is 0.2 megapixels."
    ]


def test_settings_raise_the_pixel_limit_then_the_empty_data_is_caught_by_decoding(settings):
    settings.FUNDUS_UPLOAD_MAX_PIXELS = 60_000_000

    error = _reject(hf.over_limit_png)

    assert error.code == "corrupt"


def test_settings_change_the_minimum_side(settings):
    settings.FUNDUS_UPLOAD_MIN_SIDE = 600

    error = _reject(hf.valid_png)

    assert error.code == "too_small"
    assert error.messages == [
        "The image is 512 × 512 pixels; each side must be at least 600 pixels."
    ]


def test_settings_can_allow_tiny_images(settings):
    settings.FUNDUS_UPLOAD_MIN_SIDE = 1
    name, data = hf.tiny_png()

    result = validate_fundus_upload(_memory_upload(name, data))

    assert (result.width, result.height) == (1, 1)


def test_keyword_arguments_override_settings(settings):
    settings.FUNDUS_UPLOAD_MIN_SIDE = 600
    name, data = hf.valid_png()

    result = validate_fundus_upload(_memory_upload(name, data), min_side=512)

    assert (result.width, result.height) == (512, 512)


def test_defaults_apply_when_settings_are_absent(settings):
    del settings.FUNDUS_UPLOAD_MAX_BYTES
    del settings.FUNDUS_UPLOAD_MAX_PIXELS
    del settings.FUNDUS_UPLOAD_MIN_SIDE

    assert _reject(hf.small_jpeg).messages == [
        "The image is 100 × 100 pixels; each side must be at least 256 pixels."
    ]
    assert _reject(hf.over_limit_png).messages[0].endswith("the limit is 40 megapixels.")


# --------------------------------------------------------------------------- Pillow globals


def test_pillow_globals_and_warning_filters_are_left_alone():
    max_pixels_before = Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)

    _reject(hf.bomb_png)
    _reject(hf.huge_header_png)
    validate_fundus_upload(_memory_upload(*hf.valid_jpeg()))

    assert Image.MAX_IMAGE_PIXELS == max_pixels_before
    assert warnings.filters == filters_before


def test_a_lower_pillow_limit_is_reported_as_the_effective_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # warning zone from 0.1 MP

    error = _reject(hf.valid_jpeg)

    assert error.code == "too_many_pixels"
    assert error.messages == ["The image is larger than the limit of 0.1 megapixels."]


def test_refuses_to_run_when_truncated_images_are_allowed(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(ImproperlyConfigured):
        validate_fundus_upload(_memory_upload(*hf.truncated_jpeg()))


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("client_name", "expected"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("C:\\Users\\tech\\Desktop\\OD 2026.jpg", "OD 2026.jpg"),
        ("眼底照片 右眼.jpg", "眼底照片 右眼.jpg"),
        ("e\u0301il.jpg", "\u00e9il.jpg"),  # NFD becomes NFC
        ("bad\x00na\rme\n\u202egpj.exe", "badnamegpj.exe"),  # controls and bidi override
        ("..", ""),
        ("", ""),
        ("a" * 300 + ".jpeg", "a" * 195 + ".jpeg"),
        ("b" * 300, "b" * 200),
    ],
)
def test_client_name_is_sanitised_for_display(client_name, expected):
    name = uploads.sanitize_upload_name(client_name)

    assert name == expected
    assert len(name) <= 200


def test_traversal_name_is_reduced_to_its_basename():
    _, data = hf.traversal_name_jpeg()
    upload = File(io.BytesIO(data), name="../../etc/passwd.jpg")  # File keeps the raw name

    assert validate_fundus_upload(upload).original_name == "passwd.jpg"


# --------------------------------------------------------------------------- storage names


@pytest.fixture
def november_2026(monkeypatch):
    monkeypatch.setattr(uploads.timezone, "now", lambda: datetime(2026, 11, 5, 9, 30, tzinfo=UTC))


def test_storage_name_is_server_generated_with_the_detected_extension(november_2026):
    _, data = hf.valid_png()
    validated = validate_fundus_upload(File(io.BytesIO(data), name="../../etc/passwd.jpg"))

    first = fundus_storage_name(validated=validated)
    second = fundus_storage_name(validated=validated)

    assert re.fullmatch(r"fundus/2026/11/[0-9a-f]{32}\.png", first)
    assert first != second
    assert "passwd" not in first
    assert ".." not in first


def test_storage_name_ignores_a_unicode_client_name(november_2026):
    validated = validate_fundus_upload(_memory_upload(*hf.unicode_name_jpeg()))

    name = fundus_storage_name(validated=validated, prefix="exports/")

    assert re.fullmatch(r"exports/2026/11/[0-9a-f]{32}\.jpg", name)

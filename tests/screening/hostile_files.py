"""Hostile and odd upload files for tests, as ``(client file name, bytes)`` pairs.

Every function builds its file in memory in a few milliseconds (the decompression bomb,
the slowest, takes ~0.1 s and is cached). Nothing here touches Django, so API and web
bad-input suites can reuse the corpus: wrap the bytes in ``SimpleUploadedFile(name, data)``.

Expected outcomes (see ``tests/screening/test_uploads.py``) live next to the tests, not
here, so a suite for another entry point can state its own.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

from PIL import Image

HostileFile = tuple[str, bytes]

# --------------------------------------------------------------------------- helpers


def _picture(size: tuple[int, int] = (512, 512)) -> Image.Image:
    """A deterministic RGB picture with real detail (so JPEG/PNG data is not trivial)."""
    return _cached_picture(size).copy()


@functools.cache
def _cached_picture(size: tuple[int, int]) -> Image.Image:
    gray = Image.effect_mandelbrot(size, (-2.0, -1.5, 1.0, 1.5), 100)
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (gray, gradient, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_ihdr(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    return _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    )


def _tiny_gif(frames: int) -> bytes:
    images = [Image.new("P", (64, 64), colour) for colour in range(frames)]
    if frames == 1:
        return _encode(images[0], "GIF")
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100)


# --------------------------------------------------------------------------- accepted files


@functools.cache
def valid_jpeg() -> HostileFile:
    """512×512 RGB baseline JPEG."""
    return "fundus.jpg", _encode(_picture(), "JPEG", quality=90)


def valid_png() -> HostileFile:
    """512×512 RGB PNG."""
    return "fundus.png", _encode(_picture(), "PNG")


def valid_tiff() -> HostileFile:
    """512×512 RGB TIFF, deflate-compressed."""
    return "fundus.tif", _encode(_picture(), "TIFF", compression="tiff_adobe_deflate")


def cmyk_jpeg() -> HostileFile:
    """512×512 CMYK JPEG (some scanners and print workflows produce these)."""
    return "cmyk.jpg", _encode(_picture().convert("CMYK"), "JPEG", quality=90)


def gray16_png() -> HostileFile:
    """512×512 16-bit grayscale PNG; Pillow opens it as mode ``I;16``."""
    gray = _picture().convert("L").convert("I").point(lambda v: v * 257)
    return "gray16.png", _encode(gray.convert("I;16"), "PNG")


def rgb16_tiff() -> HostileFile:
    """256×256 16-bit-per-sample RGB TIFF, written by hand (Pillow cannot write one).

    Pillow reads it as 8-bit ``RGB`` by keeping the high byte of each sample (TECH-NOTES).
    """
    width = height = 256
    # Red ramps 0x0000..0xFFFF across each row (high byte == x); identical rows compress well.
    row = b"".join(struct.pack("<HHH", x * 257, 0x1234, 0x8000) for x in range(width))
    strip = zlib.compress(row * height, 9)

    entries = [  # (tag, type, count, value or offset) — type 3 SHORT, 4 LONG
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, None),  # BitsPerSample 16,16,16 -> stored out of line
        (259, 3, 1, 8),  # Compression: Adobe deflate
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, None),  # StripOffsets
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfiguration: chunky
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = ifd_offset + ifd_size
    strip_offset = bits_offset + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_offset
        elif tag == 273:
            value = strip_offset
        packed = (
            struct.pack("<H", value) + b"\0\0"
            if kind == 3 and count == 1
            else struct.pack("<I", value)
        )
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)  # no next IFD
    data = b"II*\0" + struct.pack("<I", ifd_offset) + ifd + struct.pack("<HHH", 16, 16, 16) + strip
    return "rgb16.tif", data


def rgba_png() -> HostileFile:
    """512×512 RGBA PNG with a transparent corner."""
    image = _picture().convert("RGBA")
    image.paste((255, 255, 255, 0), (0, 0, 128, 128))
    return "rgba.png", _encode(image, "PNG")


def exif_rotated_jpeg() -> HostileFile:
    """600×400 stored, EXIF orientation 6 (rotate 90° clockwise): displayed 400×600."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return "rotated.jpg", _encode(_picture((600, 400)), "JPEG", quality=85, exif=exif.tobytes())


def exif_rotated_tiff() -> HostileFile:
    """512×300 stored, TIFF Orientation 8 (rotate 90° counter-clockwise): displayed 300×512."""
    data = _encode(
        _picture((512, 300)), "TIFF", compression="tiff_adobe_deflate", tiffinfo={0x0112: 8}
    )
    return "rotated.tif", data


def jpeg_with_garbage_tail() -> HostileFile:
    """A complete JPEG followed by junk bytes (some cameras append trailers)."""
    return "tail.jpg", valid_jpeg()[1] + b"\x00\x01garbage after EOI\xff\xff" * 20


def jpeg_html_polyglot() -> HostileFile:
    """A complete JPEG with an HTML/JS payload appended."""
    payload = b"<html><body><script>alert(document.cookie)</script></body></html>"
    return "polyglot.jpg", valid_jpeg()[1] + payload


def jpeg_zip_polyglot() -> HostileFile:
    """A complete JPEG with a ZIP archive appended (a classic "JPEG + ZIP" polyglot)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", "not a photo")
    return "polyglot-zip.jpg", valid_jpeg()[1] + archive.getvalue()


# What jpeg_metadata_payloads() hides around its pixels; none of it may be served back.
METADATA_PAYLOADS = (
    b"<script>alert(document.cookie)</script>",  # EXIF ImageDescription
    b"Zhang San 110105194912310011",  # EXIF Artist: a patient's name and ID number
    b"javascript:alert(1)",  # EXIF UserComment
    "患者 李四 13812348000".encode(),  # JPEG comment (COM)
    b"<x:xmpmeta><onload>alert(2)</onload></x:xmpmeta>",  # XMP
    b"payload.txt",  # the appended ZIP's member name
)


def jpeg_metadata_payloads() -> HostileFile:
    """A valid JPEG carrying script strings and patient data in EXIF, a comment and XMP, with
    a ZIP appended after its end (served back byte for byte, all of it would leave with it)."""
    exif = Image.Exif()
    exif[0x010E] = METADATA_PAYLOADS[0].decode()
    exif[0x013B] = METADATA_PAYLOADS[1].decode()
    exif[0x9286] = b"ASCII\x00\x00\x00" + METADATA_PAYLOADS[2]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        # A fixed timestamp: the same bytes on every call.
        member = zipfile.ZipInfo("payload.txt", date_time=(2026, 1, 1, 0, 0, 0))
        zf.writestr(member, "<html><script>alert(3)</script></html>")
    data = _encode(
        _picture(),
        "JPEG",
        quality=90,
        exif=exif.tobytes(),
        comment=METADATA_PAYLOADS[3],
        xmp=METADATA_PAYLOADS[4],
    )
    return "metadata.jpg", data + archive.getvalue()


def traversal_name_jpeg() -> HostileFile:
    """A valid JPEG whose client name tries path traversal."""
    return "../../etc/passwd.jpg", valid_jpeg()[1]


def unicode_name_jpeg() -> HostileFile:
    """A valid JPEG with a Chinese name containing a space."""
    return "眼底照片 右眼.jpg", valid_jpeg()[1]


# --------------------------------------------------------------------------- rejected files


def empty() -> HostileFile:
    return "empty.jpg", b""


def truncated_jpeg() -> HostileFile:
    """The first half of a valid JPEG: Pillow's ``verify()`` passes it, ``load()`` fails."""
    data = valid_jpeg()[1]
    return "truncated.jpg", data[: len(data) // 2]


def truncated_png() -> HostileFile:
    """The first half of a valid PNG (cut inside the IDAT data)."""
    data = valid_png()[1]
    return "truncated.png", data[: len(data) // 2]


def jpeg_header_only() -> HostileFile:
    """JPEG magic bytes followed by text: looks like a JPEG, is not one."""
    return "header-only.jpg", b"\xff\xd8\xff\xe0" + b"this is not really a jpeg" * 4


@functools.cache
def bomb_png() -> HostileFile:
    """A real decompression bomb: 20000×20000 1-bit black PNG (400 megapixels, ~48 KB).

    The IDAT stream is genuine (it would inflate to 50 MB and decode to 400 MB in mode L),
    so only a check made before decoding protects against it.
    """
    width = height = 20_000
    row = b"\x00" * (1 + width // 8)  # filter byte + packed 1-bit pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000))
    idat += compressor.flush()
    data = (
        _PNG_SIGNATURE
        + _png_ihdr(width, height, bit_depth=1)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return "bomb.png", data


def huge_header_png() -> HostileFile:
    """IHDR declares 12000×9000 (108 megapixels, Pillow's warning zone) but IDAT is tiny."""
    idat = zlib.compress(b"\x00" * 64)
    data = (
        _PNG_SIGNATURE
        + _png_ihdr(12_000, 9_000)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return "huge-header.png", data


def over_limit_png() -> HostileFile:
    """IHDR declares 8000×6000 (48 megapixels: over our 40 MP limit, under Pillow's)."""
    idat = zlib.compress(b"\x00" * 64)
    data = (
        _PNG_SIGNATURE
        + _png_ihdr(8_000, 6_000)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return "over-limit.png", data


def _png_with_chunks(before_idat: bytes = b"", after_idat: bytes = b"") -> bytes:
    image = _encode(Image.new("L", (512, 512), 40), "PNG")
    # Pillow writes IHDR first (8 + 25 bytes); split there and before IEND (last 12 bytes).
    head, body, end = image[:33], image[33:-12], image[-12:]
    return head + before_idat + body + after_idat + end


def ztxt_bomb_png() -> HostileFile:
    """A 512×512 PNG whose zTXt chunk (before IDAT) inflates to 11 MB of text."""
    text = b"Comment\0\0" + zlib.compress(b"A" * (11 * 1024 * 1024), 9)
    return "ztxt-bomb.png", _png_with_chunks(before_idat=_png_chunk(b"zTXt", text))


def itxt_bomb_png() -> HostileFile:
    """A 512×512 PNG whose compressed iTXt chunk (after IDAT) inflates to 11 MB."""
    text = b"Comment\0\x01\0\0\0" + zlib.compress(b"B" * (11 * 1024 * 1024), 9)
    return "itxt-bomb.png", _png_with_chunks(after_idat=_png_chunk(b"iTXt", text))


def gif_html_polyglot() -> HostileFile:
    """A real GIF with an HTML/JS payload appended (GIF is not an accepted format)."""
    return "polyglot-gif.jpg", _tiny_gif(1) + b"<script>alert(1)</script>"


def svg_as_jpg() -> HostileFile:
    svg = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="512" '
        b'height="512"><script>alert(1)</script><circle cx="256" cy="256" r="200"/></svg>\n'
    )
    return "image.jpg", svg


def html_as_jpg() -> HostileFile:
    return "page.jpg", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>\n"


def pdf_as_jpg() -> HostileFile:
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return "report.jpg", pdf


def zip_as_jpg() -> HostileFile:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fundus.jpg", valid_jpeg()[1])
    return "archive.jpg", archive.getvalue()


def text_as_jpg() -> HostileFile:
    return "notes.jpg", "Patient notes: left eye fine.\n患者备注\n".encode()


def eps_as_jpg() -> HostileFile:
    """An EPS header Pillow identifies (it would need Ghostscript to render it)."""
    eps = (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 512 512\n%%EndComments\n"
        b"newpath 0 0 moveto 512 512 lineto stroke\nshowpage\n%%EOF\n"
    )
    return "scan.jpg", eps


def fits_as_jpg() -> HostileFile:
    """A minimal 32×32 8-bit FITS file (astronomy format Pillow can read)."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                   32",
        "NAXIS2  =                   32",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return "sky.jpg", header + bytes(2880)


def animated_gif() -> HostileFile:
    return "animated.gif", _tiny_gif(3)


def static_gif() -> HostileFile:
    return "static.gif", _tiny_gif(1)


def multipage_tiff() -> HostileFile:
    """Two 512×512 pages."""
    page = _picture()
    pages = _encode(
        page,
        "TIFF",
        save_all=True,
        append_images=[page.rotate(90)],
        compression="tiff_adobe_deflate",
    )
    return "pages.tif", pages


def apng() -> HostileFile:
    """An animated PNG with two 512×512 frames."""
    frame = _picture()
    return "animated.png", _encode(frame, "PNG", save_all=True, append_images=[frame.rotate(90)])


def mpo_jpeg() -> HostileFile:
    """A multi-picture JPEG (MPO, as stereo fundus cameras write) with two 512×512 pictures."""
    left = _picture()
    return "stereo.jpg", _encode(left, "MPO", save_all=True, append_images=[left.rotate(180)])


def tiny_png() -> HostileFile:
    """1×1 pixel."""
    return "pixel.png", _encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")


def small_jpeg() -> HostileFile:
    """100×100, below the 256-pixel minimum side."""
    return "thumb.jpg", _encode(_picture((100, 100)), "JPEG")


ALL: dict[str, Callable[[], HostileFile]] = {
    name: function
    for name, function in globals().items()
    if callable(function)
    and not name.startswith("_")
    and getattr(function, "__module__", None) == __name__
}
"""Every generator by function name, for suites that want to run the whole corpus."""

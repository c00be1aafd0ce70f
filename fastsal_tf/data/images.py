"""Cheap validation of dataset image files with PIL, so that tf.data never meets a broken file.

Dataset images are taken as stored: EXIF orientation is NOT applied (labels refer to stored pixels).
The pipeline decodes with TensorFlow, which turns grayscale, palette, RGBA (alpha dropped), CMYK JPEG and
16-bit PNG into 8-bit RGB; the formats accepted here are those TensorFlow decodes. The checks catch what
would make TensorFlow fail (unknown or unsupported format, truncation, PNG checksum errors); damaged JPEG
scan data inside a complete file decodes (to wrong pixels) in PIL and TensorFlow alike and is not detected.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

from fastsal_tf.data.errors import DatasetError, not_a_file
from fastsal_tf.imaging import IMAGE_SUFFIXES

SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
# Listed too, so that they are reported as unsupported instead of being passed over.
UNSUPPORTED_SUFFIXES = (".tif", ".tiff", ".jp2", ".heic", ".heif", ".avif", ".ppm", ".pgm")
_TAIL_BYTES = 64


def _jpeg_has_end_marker(file) -> bool:
    file.seek(0, 2)
    file.seek(max(0, file.tell() - _TAIL_BYTES))
    return file.read().rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")


def _inspect(file, name) -> tuple[int, int]:
    """(height, width) of an open binary image file; PNG: checks chunk CRCs and the end chunk; JPEG: the
    end-of-image marker, else a full decode; other formats: a full decode."""
    try:
        with Image.open(file) as image:
            if image.format not in SUPPORTED_FORMATS:
                raise DatasetError(name, f"unsupported image format {image.format} (use one of "
                                         f"{', '.join(SUPPORTED_FORMATS)})")
            width, height = image.size
            if image.format == "PNG":
                image.verify()
            elif image.format != "JPEG" or not _jpeg_has_end_marker(file):
                image.load()
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(name, f"unreadable or corrupt image ({error})") from error
    return height, width


def inspect_image(path: str | pathlib.Path) -> tuple[int, int]:
    """Stored (height, width) of an image file after checking it can be decoded.

    Raises DatasetError naming the file when it is missing, not an image, in an unsupported format,
    truncated or corrupt.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise not_a_file(path, "image file")
    with open(path, "rb") as file:
        return _inspect(file, path)


def inspect_image_bytes(data: bytes, name: str) -> tuple[int, int]:
    """inspect_image for an encoded image in memory; errors name it name."""
    return _inspect(io.BytesIO(data), name)


def read_gray(path: str | pathlib.Path) -> np.ndarray:
    """(H, W) uint8 luminance of a label image (fixation-point or fixation-density map)."""
    path = pathlib.Path(path)
    inspect_image(path)
    try:
        with Image.open(path) as image:
            if image.mode in ("I", "I;16", "I;16B", "I;16L"):
                return (np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8)
            return np.asarray(image.convert("L"))
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(path, f"unreadable or corrupt image ({error})") from error


def list_images(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """Image files directly in folder (by suffix, unsupported image types included), keyed by stem."""
    if not folder.is_dir():
        raise DatasetError(folder, "folder not found")
    suffixes = IMAGE_SUFFIXES + UNSUPPORTED_SUFFIXES
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    stems: dict[str, pathlib.Path] = {}
    for file in files:
        if file.stem in stems:
            raise DatasetError(file, f"two images share the name {file.stem!r} ({stems[file.stem].name})")
        stems[file.stem] = file
    return stems

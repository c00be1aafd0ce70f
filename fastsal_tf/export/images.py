"""Image sets for export: representative (calibration) and validation images as uint8 RGB arrays."""

from __future__ import annotations

import pathlib

import numpy as np

from fastsal_tf.imaging import IMAGE_SUFFIXES, stretch_lanczos
from fastsal_tf.predict.errors import ImageError


def list_images(directory):
    """Sorted image files (by name) in `directory` (not recursive). ValueError when it holds none."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"image directory {str(directory)!r} does not exist")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"image directory {str(directory)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_image(path, size=None):
    """One image file → (H, W, 3) uint8 RGB; resized (stretched, LANCZOS, as the authors' predict
    script does) to size=(height, width) when given. ImageError (a ValueError) naming the file when it
    cannot be decoded (corrupt, truncated, a decompression bomb)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise ImageError(path, f"cannot be used as an export image ({error})") from None
    return rgb if size is None else stretch_lanczos(rgb, size)


def load_images(directory, size=None, limit=200):
    """The first `limit` images of `directory` (sorted by name) as (H, W, 3) uint8 RGB arrays, resized
    to size=(height, width) when given."""
    files = list_images(directory)
    if limit is not None:
        files = files[:int(limit)]
    return [load_image(path, size) for path in files]


def synthetic_images(count, size, seed=0):
    """`count` deterministic (H, W, 3) uint8 test images: smooth random blobs plus noise, covering the full
    0–255 range (for parity checks when no real images are given)."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for _ in range(int(count)):
        image = np.zeros((height, width, 3), np.float32)
        for _ in range(6):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            sigma = rng.uniform(0.08, 0.35) * max(height, width)
            colour = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
            image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))[..., None] * colour
        image += rng.normal(0.0, 0.04, image.shape).astype(np.float32)
        lo, hi = image.min(), image.max()
        images.append(np.round((image - lo) / max(hi - lo, 1e-6) * 255.0).astype(np.uint8))
    return images

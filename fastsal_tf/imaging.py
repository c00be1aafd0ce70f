"""Image conventions shared by data, predict, export and evaluation (numpy and PIL only, no TensorFlow):
which files are images, where an image lands in the network frame (stretch / letterbox) and back,
resampling (including the authors' PIL LANCZOS stretch), the centred Gaussian and normalising a map.

Coordinates: pixel centres at i + 0.5 (as fastsal_tf.fixations); sizes are (height, width) unless named _wh.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image

# Image files of datasets, image folders to label and export image sets (the formats every reader decodes).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Files `fastsal predict` picks up from a folder (explicit file arguments are tried whatever their suffix).
PREDICT_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pbm", ".pnm", ".tga")
# Saliency-map files, best first: .npy (full precision) before 16/8-bit images.
MAP_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg")

RESIZE_POLICIES = ("stretch", "letterbox")
RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS}
GAUSSIAN_SD_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a source image lands in a network frame: content (height, width) and its top-left (y, x).
    The stretch policy fills the frame; letterbox keeps the aspect ratio and centres the content."""

    content_hw: tuple[int, int]
    offset_yx: tuple[int, int]

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """The image's content region of a network-frame array (h, w, ...): the first step of the inverse
        placement (then resize it to the image size)."""
        (content_h, content_w), (offset_y, offset_x) = self.content_hw, self.offset_yx
        return frame[offset_y:offset_y + content_h, offset_x:offset_x + content_w]


def check_policy(policy: str) -> str:
    """The policy, if it is one of RESIZE_POLICIES; else ValueError."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"resize policy must be one of {RESIZE_POLICIES}, got {policy!r}")
    return policy


@functools.lru_cache(maxsize=4096)
def placement(src_hw: tuple[int, int], dst_hw: tuple[int, int], policy: str = "stretch") -> Placement:
    """Placement of a src_hw=(H, W) image in a dst_hw=(h, w) network frame. Letterbox: scale s = min(h/H,
    w/W), content (round(H·s), round(W·s)) (halves up, at least 1), centred with offsets ((h − ch) // 2,
    (w − cw) // 2) — the convention of fastsal_tf.data.geometry.placement_tf, the in-graph twin."""
    check_policy(policy)
    dst_h, dst_w = int(dst_hw[0]), int(dst_hw[1])
    if policy == "stretch":
        return Placement((dst_h, dst_w), (0, 0))
    src_h, src_w = float(src_hw[0]), float(src_hw[1])
    scale = min(dst_h / src_h, dst_w / src_w)
    content_h = min(max(int(np.floor(src_h * scale + 0.5)), 1), dst_h)
    content_w = min(max(int(np.floor(src_w * scale + 0.5)), 1), dst_w)
    return Placement((content_h, content_w), ((dst_h - content_h) // 2, (dst_w - content_w) // 2))


def resize_pil(image: Image.Image, size_wh: tuple[int, int], resample: str = "bilinear",
               reducing_gap: float | None = None) -> Image.Image:
    """A PIL image resized to size_wh=(width, height) with "bilinear" (antialiased when shrinking) or
    "lanczos"; reducing_gap lets a large shrink first box-reduce by an integer factor (fast, approximate)."""
    if image.size == tuple(size_wh):
        return image
    return image.resize(tuple(size_wh), RESAMPLING[resample], reducing_gap=reducing_gap)


def stretch_lanczos(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The authors' predict-script resize: (H, W, 3) uint8 RGB stretched to hw=(h, w) with PIL LANCZOS
    (aspect ratio not kept) → (h, w, 3) uint8."""
    height, width = (int(n) for n in hw)
    return np.asarray(resize_pil(Image.fromarray(np.asarray(image)), (width, height), "lanczos"), dtype=np.uint8)


def centered_gaussian(hw: tuple[int, int], sd_fraction: float = GAUSSIAN_SD_FRACTION, dtype=np.float64) -> np.ndarray:
    """(H, W) separable Gaussian centred on the image (pixel centres at i + 0.5), standard deviations
    sd_fraction·H and sd_fraction·W, summing to 1 (each marginal normalised in float64, then their outer
    product in dtype)."""
    height, width = (int(n) for n in hw)
    y = (np.arange(height, dtype=np.float64) + 0.5 - height / 2) / (sd_fraction * height)
    x = (np.arange(width, dtype=np.float64) + 0.5 - width / 2) / (sd_fraction * width)
    gy, gx = np.exp(-0.5 * y * y), np.exp(-0.5 * x * x)
    gy /= gy.sum()
    gx /= gx.sum()
    return np.outer(gy.astype(dtype), gx.astype(dtype))


def normalize_map(values: np.ndarray) -> np.ndarray:
    """A non-negative map divided by its sum (a probability map); ValueError for an all-zero map."""
    total = values.sum()
    if not total > 0:
        raise ValueError("an all-zero map has no probability distribution")
    return values / total

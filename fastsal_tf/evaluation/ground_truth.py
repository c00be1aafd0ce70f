"""Ground truth for evaluation: fixation maps, densities, sAUC negatives and the center-bias baseline.

Per image (stored size H×W, the frame of SaliencyExample labels):
- fixation map: every observer's fixations rasterised at H×W (`fixations.rasterize`: rounded to the
  nearest pixel; a pixel fixated several times counts once, as in the MIT benchmark);
- density: that binary map blurred by a Gaussian of sigma_px pixels (zero outside the image, truncated at
  4 sigma), normalised to sum 1 (`fixations.density_map`) — or, for an image without fixation points, the
  dataset's continuous map (8-bit luminance, as stored). Such images get only the density metrics
  (CC, KLD, SIM).
- sAUC negatives: the union of the fixations of all OTHER images of the evaluated set, each image's points
  scaled into this image's H×W frame (pixel centres to pixel centres, `fixations.scale_points`) and
  rasterised there. With one image size (OSIE, CAT2000) this is the plain pooled fixation map minus the
  image's own fixations. Pixels fixated in both this image and another one stay negatives.

Center-bias baseline (a row of the report, and the baseline of information gain):
- `mean_density(train_examples, sigma_px)`: the mean of the training images' densities at a common size
  (the most frequent training image size), every image's fixations scaled into that frame and blurred with
  the same sigma_px (map-only images: their maps normalised to sum 1 and resized); resized to each
  evaluated image with the metrics' resizing rule (`metrics.resize_map`).
- `centered_gaussian(hw)`: without a training split, a fixed centred Gaussian with standard deviations
  0.25·H and 0.25·W (the predictor's --center-bias shape), computed at each image's size.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from fastsal_tf import fixations as fx
from fastsal_tf.imaging import normalize_map
from fastsal_tf.metrics import resize_map

TRUNCATE = 4.0  # as fixations.density_map


class EvaluationWarning(UserWarning):
    """Something about the evaluated data worth knowing (e.g. images left out of the center bias)."""


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """One image's ground truth: binary fixation map (None for map-only datasets) and density, both (H, W)."""

    fixation_map: np.ndarray | None
    density: np.ndarray
    source: str  # "fixations" or "map"


def has_points(example) -> bool:
    return example.fixations is not None


def check_examples(examples: Sequence, sigma_px: float | None) -> None:
    """ValueError unless every example has ground truth (fixations or a map), ids are unique, and sigma_px is
    a positive number when any example has fixation points."""
    if not examples:
        raise ValueError("no images to evaluate")
    unlabeled = [e.id for e in examples if e.fixations is None and e.map_path is None]
    if unlabeled:
        raise ValueError(f"{len(unlabeled)} images have no ground truth (no fixations and no map), e.g. "
                         f"{', '.join(unlabeled[:5])}; evaluate a split with labels")
    counts = collections.Counter(e.id for e in examples)
    twice = [name for name, n in counts.items() if n > 1]
    if twice:
        raise ValueError(f"image ids must be unique; repeated: {', '.join(twice[:5])}")
    if any(has_points(e) for e in examples) and not (sigma_px is not None and sigma_px > 0):
        raise ValueError(f"sigma_px (the density Gaussian, in pixels) must be a positive number, got {sigma_px}")


def read_map(path: str | pathlib.Path) -> np.ndarray:
    """A dataset's continuous map as float64 (8-bit luminance values, 16-bit maps reduced to 8 bits)."""
    from fastsal_tf.data.images import read_gray

    return read_gray(path).astype(np.float64)


def image_ground_truth(example, sigma_px: float | None) -> GroundTruth:
    """The image's ground truth (see the module docstring); fixation points win over a map."""
    hw = (int(example.height), int(example.width))
    if has_points(example):
        fixation_map = fx.rasterize(example.fixations, hw)
        return GroundTruth(fixation_map, fx.density_map(fixation_map, float(sigma_px)), "fixations")
    density = read_map(example.map_path)
    if density.shape != hw:
        raise ValueError(f"{example.map_path}: map is {density.shape[1]}x{density.shape[0]} but its image is "
                         f"{hw[1]}x{hw[0]}")
    return GroundTruth(None, density, "map")


class ShuffledNegatives:
    """sAUC negatives: for image i, the other images' fixations rasterised at image i's size."""

    def __init__(self, examples: Sequence):
        self._items = [(e.id, np.asarray(e.fixations, dtype=np.float64).reshape(-1, 2),
                        (int(e.height), int(e.width))) for e in examples if has_points(e)]
        self._ids = {item[0] for item in self._items}
        self._pooled: dict[tuple[int, int], np.ndarray] = {}

    def _pooled_counts(self, hw: tuple[int, int]) -> np.ndarray:
        if hw not in self._pooled:
            total = np.zeros(hw)
            for _, points, src_hw in self._items:
                total += fx.rasterize(points, hw, src_hw=src_hw, counts=True)
            self._pooled[hw] = total
        return self._pooled[hw]

    def other_fixation_map(self, example) -> np.ndarray | None:
        """Bool (H, W) map of the other images' fixations, or None when the image has no fixation points."""
        if not has_points(example) or example.id not in self._ids:
            return None
        hw = (int(example.height), int(example.width))
        own = fx.rasterize(example.fixations, hw, counts=True)
        return (self._pooled_counts(hw) - own) > 0.5


def common_size(examples: Sequence) -> tuple[int, int]:
    """The most frequent (H, W) among examples (ties: the larger area)."""
    counts = collections.Counter((int(e.height), int(e.width)) for e in examples)
    return max(counts, key=lambda hw: (counts[hw], hw[0] * hw[1], hw))


def mean_density(examples: Sequence, sigma_px: float | None, size: tuple[int, int] | None = None
                 ) -> tuple[np.ndarray, dict]:
    """(map, info): the mean of the examples' densities at size (default `common_size`), summing to 1.

    Exact but cheap: blurring is linear, so mean_i blur(F_i)/s_i = blur(Σ_i F_i/s_i)/N, where s_i, the mass
    of image i's blurred fixation map inside the image, is read from the blur of an all-ones image. Images
    without fixations (or with an all-zero map) are left out and counted in info["left_out"]. ValueError
    when no image is usable.
    """
    examples = list(examples)
    if not examples:
        raise ValueError("the center bias needs at least one training image")
    hw = tuple(int(n) for n in size) if size is not None else common_size(examples)
    weighted = np.zeros(hw)
    maps = np.zeros(hw)
    used = left_out = 0
    mass = None
    for example in examples:
        if has_points(example):
            if sigma_px is None or not sigma_px > 0:
                raise ValueError(f"sigma_px must be a positive number, got {sigma_px}")
            fixated = fx.rasterize(example.fixations, hw, src_hw=(int(example.height), int(example.width)))
            if not fixated.any():
                left_out += 1
                continue
            if mass is None:
                mass = ndimage.gaussian_filter(np.ones(hw), float(sigma_px), mode="constant", truncate=TRUNCATE)
            weighted[fixated] += 1.0 / mass[fixated].sum()
        else:
            values = read_map(example.map_path)
            if not values.any():
                left_out += 1
                continue
            values = normalize_map(values)
            if values.shape != hw:
                values = normalize_map(np.maximum(resize_map(values, hw), 0.0))
            maps += values
        used += 1
    if not used:
        raise ValueError("no training image has fixations or a non-zero map: cannot build the center bias")
    if left_out:
        warnings.warn(f"center bias: {left_out} training images without fixations left out", EvaluationWarning,
                      stacklevel=2)
    total = maps
    if weighted.any():
        total = total + ndimage.gaussian_filter(weighted, float(sigma_px), mode="constant", truncate=TRUNCATE)
    total = total / used
    info = {"kind": "mean training density", "images": used, "left_out": left_out, "size_hw": list(hw),
            "sigma_px": None if sigma_px is None else float(sigma_px)}
    return normalize_map(total), info

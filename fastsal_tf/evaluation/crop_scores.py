"""Scores of crops and attention centres against human fixations (per image).

Fixations are (N, 2) float (x, y), 0-based pixels (fastsal_tf.fixations). Boxes are (x0, y0, x1, y1) integer
pixel edges, x1 / y1 exclusive; a fixation is inside a box when its nearest pixel is.

- coverage: the fraction of the image's fixations inside a box.
- oracle_box: the box of a given size holding the most fixations (ties: nearest the centre).
- hit_rate: the fraction of fixations within `radius`·diagonal of a point (Euclidean, inclusive).
- oracle_hit_rate: the best hit rate over points on a `step`-pixel grid (a lower bound of the best over all
  points, within the grid's reach).
"""

from __future__ import annotations

import math

import numpy as np

from fastsal_tf.fixations import rasterize
from fastsal_tf.predict.decisions import best_window


def fixation_counts(fixations: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) float64 map of how many fixations fall on each pixel (nearest pixel, clipped into the image)."""
    return rasterize(fixations, tuple(image_hw), counts=True).astype(np.float64)


def coverage(counts: np.ndarray, box) -> float:
    """Share of the fixations of `counts` (fixation_counts) inside box (0 when there are none)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    total = counts.sum()
    return float(counts[y0:y1, x0:x1].sum() / total) if total > 0 else 0.0


def centered_box(image_hw: tuple[int, int], box_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box_hw box in the middle of the image (offsets rounded down)."""
    x0, y0 = (image_hw[1] - box_hw[1]) // 2, (image_hw[0] - box_hw[0]) // 2
    return x0, y0, x0 + box_hw[1], y0 + box_hw[0]


def box_around(point_xy, image_hw: tuple[int, int], box_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box_hw box centred on point (x, y), shifted to lie inside the image."""
    x0 = min(max(round(point_xy[0] + 0.5 - box_hw[1] / 2), 0), image_hw[1] - box_hw[1])
    y0 = min(max(round(point_xy[1] + 0.5 - box_hw[0] / 2), 0), image_hw[0] - box_hw[0])
    return x0, y0, x0 + box_hw[1], y0 + box_hw[0]


def oracle_box(counts: np.ndarray, box_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box_hw box holding the most fixations."""
    y0, x0 = best_window(counts, box_hw)
    return x0, y0, x0 + box_hw[1], y0 + box_hw[0]


def hit_rate(fixations: np.ndarray, point_xy, image_hw: tuple[int, int], radius: float = 0.1) -> float:
    """Share of fixations within radius·diagonal of point (x, y) (0 when there are none)."""
    points = np.asarray(fixations, np.float64).reshape(-1, 2)
    if not len(points):
        return 0.0
    reach = radius * math.hypot(*image_hw)
    distance2 = (points[:, 0] - point_xy[0]) ** 2 + (points[:, 1] - point_xy[1]) ** 2
    return float(np.mean(distance2 <= reach * reach))


def oracle_hit_rate(fixations: np.ndarray, image_hw: tuple[int, int], radius: float = 0.1,
                    step: int = 4) -> float:
    """The best hit_rate over the grid points (x, y) = (step·i, step·j) inside the image."""
    points = np.asarray(fixations, np.float64).reshape(-1, 2)
    if not len(points):
        return 0.0
    reach2 = (radius * math.hypot(*image_hw)) ** 2
    xs = np.arange(0, image_hw[1], step, dtype=np.float64)
    best = 0
    for y in np.arange(0, image_hw[0], step, dtype=np.float64):
        near = ((points[None, :, 0] - xs[:, None]) ** 2 + (points[None, :, 1] - y) ** 2) <= reach2
        best = max(best, int(near.sum(axis=1).max()))
    return best / len(points)

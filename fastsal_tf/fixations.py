"""Fixation points → binary fixation maps and density maps (numpy).

Internal convention used everywhere in fastsal_tf: fixations are a float array of shape (N, 2) holding
**(x, y) in 0-based pixel coordinates of the stored image**, where integer values are pixel centres
(x = column, y = row). Readers convert their file's convention (often 1-based MATLAB) to this one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def scale_points(points_xy: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Maps (N, 2) (x, y) points from an image of size src_hw=(H, W) to one of size dst_hw.

    Pixel centres map to pixel centres: x' = (x + 0.5) · W'/W − 0.5 (same for y).
    """
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    sy = dst_hw[0] / src_hw[0]
    sx = dst_hw[1] / src_hw[1]
    return np.stack([(points[:, 0] + 0.5) * sx - 0.5, (points[:, 1] + 0.5) * sy - 0.5], axis=1)


def rasterize(points_xy: np.ndarray, out_hw: tuple[int, int], src_hw: tuple[int, int] | None = None,
              counts: bool = False) -> np.ndarray:
    """Binary fixation map of shape out_hw=(H, W) from (N, 2) (x, y) points.

    Points given in a frame of size src_hw are rescaled first (see scale_points); each point is rounded
    to the nearest pixel and clipped into the map. With counts=True the map holds how many fixations
    fell on each pixel (float64) instead of a bool map (the MIT benchmark uses the bool map).
    """
    height, width = out_hw
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    points = points[np.all(np.isfinite(points), axis=1)]
    if src_hw is not None and tuple(src_hw) != tuple(out_hw):
        points = scale_points(points, src_hw, out_hw)
    cols = np.clip(np.rint(points[:, 0]).astype(np.int64), 0, width - 1)
    rows = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, height - 1)
    grid = np.zeros((height, width), dtype=np.float64)
    np.add.at(grid, (rows, cols), 1.0)
    return grid if counts else grid > 0


def density_map(fixation_map: np.ndarray, sigma_px: float) -> np.ndarray:
    """Fixation density: the (H, W) fixation map (bool or counts) blurred by a Gaussian of sigma_px
    pixels (zero outside the image), normalised to sum to 1. An empty map gives all zeros."""
    blurred = ndimage.gaussian_filter(np.asarray(fixation_map, dtype=np.float64), sigma_px, mode="constant",
                                      truncate=4.0)
    total = blurred.sum()
    return blurred / total if total > 0 else blurred


def sigma_from_degrees(degrees: float, pixels_per_degree: float) -> float:
    """Gaussian sigma in pixels for a visual angle in degrees at the given pixels-per-degree."""
    return float(degrees) * float(pixels_per_degree)

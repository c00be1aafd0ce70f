"""Helpers shared by the readers: MATLAB files, label/image pairing, fixation checks."""

from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from fastsal_tf.data.errors import Collector, DatasetError, not_a_file
from fastsal_tf.data.example import SaliencyExample
from fastsal_tf.data.images import inspect_image

OUTSIDE_POLICIES = ("error", "drop")


def load_mat(path: pathlib.Path, **options) -> dict:
    """Variables of a MATLAB v5 .mat file (options go to scipy.io.loadmat)."""
    if not path.is_file():
        raise not_a_file(path, "label file")
    try:
        return scipy.io.loadmat(path, **options)
    except NotImplementedError as error:
        raise DatasetError(path, "MATLAB v7.3 (HDF5) files are not supported; save with -v7") from error
    except (scipy.io.matlab.MatReadError, OSError, ValueError, TypeError, EOFError) as error:
        raise DatasetError(path, f"unreadable .mat file ({error})") from error


def mat_field(struct, field: str, path: pathlib.Path, where: str):
    """struct.field of a scipy mat_struct, or DatasetError naming the missing field."""
    if not hasattr(struct, "_fieldnames") or field not in struct._fieldnames:
        raise DatasetError(path, f"unexpected .mat structure: {where} has no field {field!r}")
    return getattr(struct, field)


def as_points(values, path: pathlib.Path, where: str) -> np.ndarray:
    """(N, 2) float64 from a numeric array-like of pairs; DatasetError when it is not one."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DatasetError(path, f"unexpected structure: {where} is not numeric") from error
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise DatasetError(path, f"unexpected structure: {where} has shape {array.shape}, expected (N, 2)")
    return array


def points_from_binary_map(binary: np.ndarray) -> np.ndarray:
    """(N, 2) (x, y) 0-based points at the nonzero pixels of a (H, W) map (pixel indices)."""
    rows, cols = np.nonzero(binary)
    return np.stack([cols, rows], axis=1).astype(np.float64)


def check_points(points_xy: np.ndarray, height: int, width: int, path: str | pathlib.Path, outside: str,
                 collector: Collector) -> np.ndarray:
    """Validates internal (x, y) 0-based points for a height×width image.

    The image covers [-0.5, W - 0.5] × [-0.5, H - 0.5]. Points outside raise DatasetError (outside="error")
    or are removed and counted in the collector (outside="drop"). Non-finite values and an empty list
    raise DatasetError.
    """
    if outside not in OUTSIDE_POLICIES:
        raise ValueError(f"outside must be one of {OUTSIDE_POLICIES}, got {outside!r}")
    if not np.all(np.isfinite(points_xy)):
        raise DatasetError(path, "fixations contain NaN or Inf")
    inside = ((points_xy[:, 0] >= -0.5) & (points_xy[:, 0] <= width - 0.5)
              & (points_xy[:, 1] >= -0.5) & (points_xy[:, 1] <= height - 0.5))
    if not np.all(inside):
        if outside == "error":
            x, y = points_xy[~inside][0]
            raise DatasetError(path, f"{np.count_nonzero(~inside)} of {len(points_xy)} fixations lie outside the "
                                     f"{width}x{height} image, e.g. 0-based (x, y) = ({x:g}, {y:g}); "
                                     f"fix the data, or read it in Python with outside='drop' to remove them")
        collector.dropped_fixations += int(np.count_nonzero(~inside))
        points_xy = points_xy[inside]
    if len(points_xy) == 0:
        raise DatasetError(path, "no fixations")
    return points_xy


def check_same_size(label_path: pathlib.Path, image_hw: tuple[int, int]) -> None:
    """DatasetError unless the label image has the image's size."""
    label_hw = inspect_image(label_path)
    if label_hw != image_hw:
        raise DatasetError(label_path, f"map is {label_hw[1]}x{label_hw[0]} but its image is "
                                       f"{image_hw[1]}x{image_hw[0]}")


def pair_by_stem(images: dict[str, pathlib.Path], labels: dict[str, pathlib.Path], collector: Collector,
                 what: str) -> list[str]:
    """Stems that have both an image and a label; an image without label, or a label without image,
    is a DatasetError (skipped and counted with skip_bad)."""
    for stem in sorted(set(images) ^ set(labels)):
        with collector.item():
            if stem in images:
                raise DatasetError(images[stem], f"image without labels (no {what})")
            raise DatasetError(labels[stem], "labels without an image")
    return sorted(set(images) & set(labels))


def example_from_files(collector: Collector, example_id: str, image_path: pathlib.Path, outside: str,
                       points_fn=None, map_path: pathlib.Path | None = None) -> None:
    """Checks an image and its labels and adds the example to the collector (or skips it).

    points_fn(image_hw) -> ((N, 2) internal points, path to blame), or None for no fixations.
    """
    with collector.item():
        height, width = inspect_image(image_path)
        points = None
        if points_fn is not None:
            raw, label_path = points_fn((height, width))
            points = check_points(raw, height, width, label_path, outside, collector)
        if map_path is not None:
            check_same_size(map_path, (height, width))
        collector.examples.append(SaliencyExample(example_id, image_path, height, width, points, map_path))

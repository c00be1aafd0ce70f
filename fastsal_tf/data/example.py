"""The one record every dataset reader yields."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class SaliencyExample:
    """One image with its saliency labels, in fastsal_tf's internal conventions.

    id: stable identifier (usually the file stem).
    image_path: the stored image file. Labels refer to its stored pixels (no EXIF rotation applied).
    height, width: stored image size in pixels.
    fixations: (N, 2) float64 (x, y), 0-based pixel coordinates in the stored image frame (pixel centres
        at integers), or None when the dataset has no fixation points. N may be 0.
    map_path: a continuous fixation / density map file of the same size as the image, or None.
    """

    id: str
    image_path: pathlib.Path
    height: int
    width: int
    fixations: np.ndarray | None = None
    map_path: pathlib.Path | None = None

"""MIT1003 (Judd et al. 2009) and MIT300 (the MIT benchmark's held-out images).

MIT1003 layout: `ALLSTIMULI/<name>.jpeg`, `ALLFIXATIONMAPS/<name>_fixMap.jpg` (continuous map) and
`ALLFIXATIONMAPS/<name>_fixPts.jpg` (fixation points saved as a JPEG). Points are the pixels of `_fixPts`
above 127, as (row, col) indices of the stored image frame, converted to internal (x, y) = (col, row).
One split, "train" (all 1003 images, sorted by name); None means the same.

MIT300 layout: the images directly in root (the unpacked BenchmarkIMAGES folder); no labels, split None or
"test". Images are taken as stored (no EXIF rotation).
"""

from __future__ import annotations

import pathlib

from fastsal_tf.data.errors import Collector, ReadResult
from fastsal_tf.data.images import list_images, read_gray
from fastsal_tf.data.readers.common import (check_same_size, example_from_files, pair_by_stem,
                                            points_from_binary_map)

FIXPTS_THRESHOLD = 127


def _check_split(split: str | None, allowed: str, dataset: str) -> None:
    if split not in (None, allowed):
        raise ValueError(f"{dataset} has one split, {allowed!r} (or None), got {split!r}")


def _fixpts_points(path: pathlib.Path, image_hw: tuple[int, int]):
    check_same_size(path, image_hw)
    return points_from_binary_map(read_gray(path) > FIXPTS_THRESHOLD), path


def read_mit1003(root: str | pathlib.Path, split: str | None = None, *, skip_bad: bool = False,
                 outside: str = "error") -> ReadResult:
    """MIT1003 examples with fixation points (from _fixPts) and the continuous map (_fixMap)."""
    _check_split(split, "train", "MIT1003")
    root = pathlib.Path(root)
    maps = root / "ALLFIXATIONMAPS"
    images = list_images(root / "ALLSTIMULI")
    points = {p.name[: -len("_fixPts.jpg")]: p for p in sorted(maps.glob("*_fixPts.jpg"))}
    collector = Collector("mit1003/train", skip_bad)
    for stem in pair_by_stem(images, points, collector, "_fixPts.jpg"):
        example_from_files(collector, stem, images[stem], outside,
                           lambda hw, p=points[stem]: _fixpts_points(p, hw), maps / f"{stem}_fixMap.jpg")
    return collector.result()


def read_mit300(root: str | pathlib.Path, split: str | None = None, *, skip_bad: bool = False,
                outside: str = "error") -> ReadResult:
    """MIT300 images (no labels)."""
    _check_split(split, "test", "MIT300")
    collector = Collector("mit300/test", skip_bad)
    for stem, path in list_images(pathlib.Path(root)).items():
        example_from_files(collector, stem, path, outside)
    return collector.result()

"""CAT2000 (Borji & Itti 2015).

Layout: `trainSet/Stimuli/<Category>/<name>.jpg`, `trainSet/FIXATIONMAPS/<Category>/<name>.jpg` (continuous
map), `trainSet/FIXATIONLOCS/<Category>/<name>.mat` (a binary map of fixation locations, the image's size),
`testSet/Stimuli/<Category>/<name>.jpg` (no labels). Points are the nonzero pixels of the one H×W array
variable in the .mat, as (row, col) indices, converted to internal (x, y) = (col, row). Example ids are
"<Category>/<name>". Images are taken as stored (no EXIF rotation).
"""

from __future__ import annotations

import pathlib

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import example_from_files, load_mat, pair_by_stem, points_from_binary_map

SPLITS = {"train": "trainSet", "test": "testSet"}


def _fixlocs_points(path: pathlib.Path, image_hw: tuple[int, int]):
    data = load_mat(path)
    arrays = [value for key, value in data.items() if not key.startswith("__")
              and isinstance(value, np.ndarray) and value.shape == tuple(image_hw) and value.dtype != object]
    if len(arrays) != 1:
        raise DatasetError(path, f"unexpected .mat structure: expected one {image_hw[0]}x{image_hw[1]} array "
                                 f"(the fixation locations), found {len(arrays)} among "
                                 f"{[k for k in data if not k.startswith('__')]}")
    return points_from_binary_map(arrays[0] != 0), path


def read_cat2000(root: str | pathlib.Path, split: str = "train", *, skip_bad: bool = False,
                 outside: str = "error") -> ReadResult:
    """CAT2000 examples; split "train" (fixations + maps) or "test" (images only)."""
    if split not in SPLITS:
        raise ValueError(f"CAT2000 split must be one of {tuple(SPLITS)}, got {split!r}")
    base = pathlib.Path(root) / SPLITS[split]
    stimuli = base / "Stimuli"
    if not stimuli.is_dir():
        raise DatasetError(stimuli, "folder not found")
    collector = Collector(f"cat2000/{split}", skip_bad)
    for category in sorted(p.name for p in stimuli.iterdir() if p.is_dir()):
        images = {f"{category}/{stem}": p for stem, p in list_images(stimuli / category).items()}
        if split == "test":
            for example_id, path in images.items():
                example_from_files(collector, example_id, path, outside)
            continue
        locs = {f"{category}/{p.stem}": p for p in sorted((base / "FIXATIONLOCS" / category).glob("*.mat"))}
        for example_id in pair_by_stem(images, locs, collector, "FIXATIONLOCS .mat"):
            map_path = base / "FIXATIONMAPS" / f"{example_id}.jpg"
            example_from_files(collector, example_id, images[example_id], outside,
                               lambda hw, p=locs[example_id]: _fixlocs_points(p, hw), map_path)
    return collector.result()

"""EyeCrowd ("Saliency in Crowd", Jiang, Xu & Zhao, ECCV 2014): 500 crowd scenes of 1024×768, 16 observers
each, free viewing, in the NUS-VIP layout (readers/nus.py); MIT license.

The project's cross-dataset validation set: recipes are compared on split "all" and never trained on it.
Splits: "all" (or None: the 500 images) and a fixed 400 / 100 "train" / "validation" split
(fastsal_tf/data/eyecrowd_split.json, made by training/splits/make_extra_splits.py) for a final model that
adds EyeCrowd once the recipe is fixed. Densities use a Gaussian of sigma 26 px in the 1024×768 frame, the
authors' choice for their maps (DENSITY_SIGMA_PX).
"""

from __future__ import annotations

import pathlib

from fastsal_tf.data.errors import ReadResult
from fastsal_tf.data.readers.nus import read_nus_layout
from fastsal_tf.data.readers.splits import load_split

SPLITS = ("all", "train", "validation")
DENSITY_SIGMA_PX = 26.0


def eyecrowd_split(path: str | pathlib.Path | None = None) -> dict[str, list[str]]:
    """The fixed EyeCrowd split {"train": [400 file names], "validation": [100 file names]}."""
    return load_split("eyecrowd_split.json", ("train", "validation"), path)


def read_eyecrowd(root: str | pathlib.Path, split: str | None = "all", *,
                  split_file: str | pathlib.Path | None = None, skip_bad: bool = False,
                  outside: str = "error") -> ReadResult:
    """EyeCrowd examples of split "all" (None means the same), "train" or "validation"."""
    split = split or "all"
    if split not in SPLITS:
        raise ValueError(f"EyeCrowd split must be one of {SPLITS}, got {split!r}")
    names = None if split == "all" else eyecrowd_split(split_file)[split]
    return read_nus_layout(root, f"eyecrowd/{split}", names, skip_bad=skip_bad, outside=outside)

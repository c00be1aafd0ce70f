"""OSIE (Xu et al. 2014): 700 images of 800×600, 15 observers, in the NUS-VIP layout (readers/nus.py).

Splits: the fixed 600 / 100 train / validation split shipped in fastsal_tf/data/osie_split.json, or None
(every image).
"""

from __future__ import annotations

import pathlib

from fastsal_tf.data.errors import ReadResult
from fastsal_tf.data.readers.nus import read_nus_layout
from fastsal_tf.data.readers.splits import load_split

SPLITS = ("train", "validation")
PIXELS_PER_DEGREE = 24.0  # a 1-degree Gaussian is about 24 px in the 800×600 frame


def osie_split(path: str | pathlib.Path | None = None) -> dict[str, list[str]]:
    """The fixed OSIE split {"train": [600 file names], "validation": [100 file names]}.

    path: an osie_split.json; default the copy shipped in this package (same as ../shared/data/osie_split.json).
    """
    return load_split("osie_split.json", SPLITS, path)


def read_osie(root: str | pathlib.Path, split: str | None = None, *, split_file: str | pathlib.Path | None = None,
              skip_bad: bool = False, outside: str = "error") -> ReadResult:
    """OSIE examples; split "train" / "validation" (the fixed split of osie_split(split_file)) or None (all).

    Every image of the requested split must have an entry in fixations.mat and vice versa.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"OSIE split must be one of {SPLITS} or None, got {split!r}")
    names = None if split is None else osie_split(split_file)[split]
    return read_nus_layout(root, f"osie/{split or 'all'}", names, skip_bad=skip_bad, outside=outside)

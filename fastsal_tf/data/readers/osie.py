"""OSIE (Xu et al. 2014): data/stimuli/<name>.jpg and data/eye/fixations.mat.

File convention: fixations.mat holds a 700×1 cell array `fixations`; each cell is a struct with `img` (file
name) and `subjects` (a cell array of structs with `fix_x`, `fix_y`: 1×M float64, **1-based** pixel
coordinates in the stored 800×600 frame, fractional). Converted to internal 0-based (x, y) by subtracting 1.
Images are taken as stored (no EXIF rotation).
"""

from __future__ import annotations

import importlib.resources
import json
import pathlib

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import example_from_files, load_mat, mat_field

SPLITS = ("train", "validation")
PIXELS_PER_DEGREE = 24.0  # a 1-degree Gaussian is about 24 px in the 800×600 frame


def osie_split(path: str | pathlib.Path | None = None) -> dict[str, list[str]]:
    """The fixed OSIE split {"train": [600 file names], "validation": [100 file names]}.

    path: an osie_split.json; default the copy shipped in this package (same as ../shared/data/osie_split.json).
    """
    if path is None:
        text = importlib.resources.files("fastsal_tf.data").joinpath("osie_split.json").read_text()
        source = "fastsal_tf/data/osie_split.json"
    else:
        text, source = pathlib.Path(path).read_text(), str(path)
    try:
        data = json.loads(text)
        split = {name: [str(f) for f in data[name]] for name in SPLITS}
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(source, f"not an OSIE split file ({error})") from error
    if set(split["train"]) & set(split["validation"]):
        raise DatasetError(source, "train and validation share images")
    return split


def _points(entry, mat_path: pathlib.Path, where: str) -> np.ndarray:
    subjects = np.atleast_1d(mat_field(entry, "subjects", mat_path, where))
    xs, ys = [], []
    for k, subject in enumerate(subjects):
        x = np.atleast_1d(np.asarray(mat_field(subject, "fix_x", mat_path, f"{where} subject {k + 1}"), float))
        y = np.atleast_1d(np.asarray(mat_field(subject, "fix_y", mat_path, f"{where} subject {k + 1}"), float))
        if x.shape != y.shape or x.ndim != 1:
            raise DatasetError(mat_path, f"unexpected .mat structure: {where} subject {k + 1} has fix_x "
                                         f"{x.shape} and fix_y {y.shape}")
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.zeros((0, 2))
    return np.stack([np.concatenate(xs), np.concatenate(ys)], axis=1) - 1.0


def _entries(mat_path: pathlib.Path) -> dict[str, object]:
    """Image file name → fixations.mat entry."""
    data = load_mat(mat_path, squeeze_me=True, struct_as_record=False)
    if "fixations" not in data:
        raise DatasetError(mat_path, "unexpected .mat structure: no variable 'fixations'")
    entries = {}
    for index, entry in enumerate(np.atleast_1d(data["fixations"])):
        name = mat_field(entry, "img", mat_path, f"fixations cell {index + 1}")
        if not isinstance(name, str):
            raise DatasetError(mat_path, f"unexpected .mat structure: fixations cell {index + 1} img is not text")
        entries[name] = entry
    return entries


def read_osie(root: str | pathlib.Path, split: str | None = None, *, split_file: str | pathlib.Path | None = None,
              skip_bad: bool = False, outside: str = "error") -> ReadResult:
    """OSIE examples; split "train" / "validation" (the fixed split of osie_split(split_file)) or None (all).

    Every image of the requested split must have an entry in fixations.mat and vice versa.
    """
    root = pathlib.Path(root)
    mat_path = root / "data" / "eye" / "fixations.mat"
    entries = _entries(mat_path)
    images = {p.name: p for p in list_images(root / "data" / "stimuli").values()}
    if split is None:
        names = sorted(set(entries) | set(images))
    elif split in SPLITS:
        names = osie_split(split_file)[split]
    else:
        raise ValueError(f"OSIE split must be one of {SPLITS} or None, got {split!r}")
    collector = Collector(f"osie/{split or 'all'}", skip_bad)
    for name in names:
        if name not in entries or name not in images:
            with collector.item():
                if name in images:
                    raise DatasetError(images[name], f"image without labels (no entry in {mat_path})")
                raise DatasetError(root / "data" / "stimuli" / name, "image not found")
            continue
        entry = entries[name]
        example_from_files(collector, pathlib.Path(name).stem, images[name], outside,
                           lambda hw, e=entry, n=name: (_points(e, mat_path, f"entry {n}"), f"{mat_path}[{n}]"))
    return collector.result()

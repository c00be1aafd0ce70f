"""The NUS-VIP eye-tracking layout shared by OSIE and EyeCrowd: `data/stimuli/<name>.jpg` and
`data/eye/fixations.mat`.

fixations.mat holds a cell array `fixations`, one cell per image; each cell is a struct with `img` (the file
name) and `subjects` (a cell array of structs with `fix_x`, `fix_y`: 1×M float64, **1-based** MATLAB pixel
coordinates in the stored frame, fractional; `fix_duration` is not read). Converted to internal 0-based
(x, y) by subtracting 1. Images are taken as stored (no EXIF rotation).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import example_from_files, load_mat, mat_field


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


def read_nus_layout(root: str | pathlib.Path, name: str, names: Sequence[str] | None, *, skip_bad: bool = False,
                    outside: str = "error") -> ReadResult:
    """Examples of the image file names `names` (None: every image and every .mat entry) under root.

    Every requested image must have an entry in fixations.mat and vice versa. name: the ReadResult's name
    (e.g. "osie/train"). Example ids are the file stems.
    """
    root = pathlib.Path(root)
    mat_path = root / "data" / "eye" / "fixations.mat"
    entries = _entries(mat_path)
    images = {p.name: p for p in list_images(root / "data" / "stimuli").values()}
    if names is None:
        names = sorted(set(entries) | set(images))
    collector = Collector(name, skip_bad)
    for file_name in names:
        if file_name not in entries or file_name not in images:
            with collector.item():
                if file_name in images:
                    raise DatasetError(images[file_name], f"image without labels (no entry in {mat_path})")
                raise DatasetError(root / "data" / "stimuli" / file_name, "image not found")
            continue
        entry = entries[file_name]
        example_from_files(collector, pathlib.Path(file_name).stem, images[file_name], outside,
                           lambda hw, e=entry, n=file_name: (_points(e, mat_path, f"entry {n}"), f"{mat_path}[{n}]"))
    return collector.result()

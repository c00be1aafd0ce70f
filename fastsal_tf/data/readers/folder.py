"""A generic saliency folder: images plus maps and/or fixation files, matched by file stem.

Layout (root):
- `images/<stem>.<jpg|jpeg|png|bmp|gif|webp>` — the stimuli, taken as stored (no EXIF rotation).
- `maps/<stem>.png` or `.jpg` (optional) — a continuous fixation/density map of the image's size
  (8 or 16 bit; colour is converted to luminance).
- `fixations/<stem>.<csv|json|mat>` (optional), one file per image, in one of:
  - CSV: a header row with columns `x` and `y` (others ignored), one fixation per row, **0-based**
    pixel coordinates (x = column, y = row; pixel centres at integers).
  - JSON: `{"fixations": [[x, y], ...]}`, **0-based** as in the CSV.
  - MAT: variable `fixations`, an N×2 array of **[x, y] 1-based** (MATLAB) pixel coordinates.
Every image needs a map or a fixation file (or both); a label without an image is an error too.
"""

from __future__ import annotations

import csv
import json
import pathlib

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult, not_a_file
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import as_points, example_from_files, load_mat, pair_by_stem

FIXATION_SUFFIXES = (".csv", ".json", ".mat")
MAP_SUFFIXES = (".png", ".jpg")


def _read_csv(path: pathlib.Path) -> np.ndarray:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = list(reader)
    if "x" not in fields or "y" not in fields:
        raise DatasetError(path, "unexpected structure: the CSV header needs columns 'x' and 'y'")
    try:
        return np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as error:
        raise DatasetError(path, f"unexpected structure: non-numeric x/y ({error})") from error


def _read_json(path: pathlib.Path) -> np.ndarray:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"unreadable JSON ({error})") from error
    if not isinstance(data, dict) or "fixations" not in data:
        raise DatasetError(path, "unexpected structure: expected {\"fixations\": [[x, y], ...]}")
    return as_points(data["fixations"], path, "fixations")


def _read_mat(path: pathlib.Path) -> np.ndarray:
    data = load_mat(path)
    if "fixations" not in data:
        raise DatasetError(path, "unexpected .mat structure: no variable 'fixations'")
    return as_points(data["fixations"], path, "fixations") - 1.0


_PARSERS = {".csv": _read_csv, ".json": _read_json, ".mat": _read_mat}


def read_fixation_file(path: str | pathlib.Path) -> np.ndarray:
    """(N, 2) internal 0-based (x, y) points from a .csv, .json or .mat fixation file (formats above)."""
    path = pathlib.Path(path)
    if path.suffix.lower() not in _PARSERS:
        raise DatasetError(path, f"unsupported fixation file type (use {', '.join(FIXATION_SUFFIXES)})")
    if not path.is_file():
        raise not_a_file(path, "fixation file")
    return _PARSERS[path.suffix.lower()](path)


def _by_stem(folder: pathlib.Path, suffixes: tuple[str, ...]) -> dict[str, pathlib.Path]:
    found: dict[str, pathlib.Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes):
        if path.stem in found:
            raise DatasetError(path, f"two label files for {path.stem!r} ({found[path.stem].name})")
        found[path.stem] = path
    return found


def read_folder(root: str | pathlib.Path, split: str | None = None, *, skip_bad: bool = False,
                outside: str = "error") -> ReadResult:
    """Examples of a generic folder (layout above); it has no splits (split must be None)."""
    if split is not None:
        raise ValueError(f"a generic folder has no splits, got {split!r}")
    root = pathlib.Path(root)
    images = list_images(root / "images")
    fixations = _by_stem(root / "fixations", FIXATION_SUFFIXES)
    maps = _by_stem(root / "maps", MAP_SUFFIXES)
    collector = Collector(f"folder/{root.name}", skip_bad)
    labels = {stem: fixations.get(stem) or maps[stem] for stem in set(fixations) | set(maps)}
    for stem in pair_by_stem(images, labels, collector, "map or fixation file"):
        points_fn = None
        if stem in fixations:
            points_fn = lambda hw, p=fixations[stem]: (read_fixation_file(p), p)  # noqa: E731
        example_from_files(collector, stem, images[stem], outside, points_fn, maps.get(stem))
    return collector.result()

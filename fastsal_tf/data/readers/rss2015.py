"""rss2015: 60 photographs with 10 observers each (Kashlak et al., RSS 2015 data challenge;
cachelack/eyeFixationData, no license stated, "freely available").

Layout: `images/normal/<k>_c.png` (k = 1…60; 57 are 1024×768, images 7, 8 and 20 are 768×1024) and
`data.csv`. The CSV header names 8 columns (`fx, fy, duration, fixation, subject, condition, image, format`)
but every row has 9 fields, a leading row name first. Only rows with condition "normal" (subjects n1–n10)
belong to these images. Coordinates are pixels **relative to the image centre with y pointing up**: the
internal 0-based point is x = fx + w/2, y = h/2 − fy. About 1.2 % of the fixations fall outside the image;
the reader drops them by default (outside="drop", counted in ReadResult.dropped_fixations).
One split, "all" (or None). Example ids are "<k>_c". Density sigma: 26 px in the 1024×768 frame, as for
EyeCrowd (same resolution; the challenge states no viewing distance) — DENSITY_SIGMA_PX.
"""

from __future__ import annotations

import csv
import pathlib

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult, not_a_file
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import example_from_files

SPLITS = ("all",)
CONDITION = "normal"
DENSITY_SIGMA_PX = 26.0
_COLUMNS = ("row", "fx", "fy", "duration", "fixation", "subject", "condition", "image", "format")


def _read_csv(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Image number (text) → (N, 2) centre-relative (fx, fy) of the "normal" condition."""
    if not path.is_file():
        raise not_a_file(path, "label file")
    points: dict[str, list[tuple[float, float]]] = {}
    try:
        with open(path, newline="") as file:
            rows = csv.reader(file)
            header = next(rows, None)
            if header is None or [h.strip() for h in header] != list(_COLUMNS[1:]):
                raise DatasetError(path, f"unexpected header {header}; expected {', '.join(_COLUMNS[1:])}")
            for number, row in enumerate(rows, start=2):
                if len(row) != len(_COLUMNS):
                    raise DatasetError(path, f"line {number} has {len(row)} fields, expected {len(_COLUMNS)} "
                                             "(a row name, then the 8 named columns)")
                record = dict(zip(_COLUMNS, row))
                if record["condition"] == CONDITION:
                    points.setdefault(record["image"], []).append((float(record["fx"]), float(record["fy"])))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(path, f"unreadable CSV ({error})") from error
    except ValueError as error:
        if isinstance(error, DatasetError):
            raise
        raise DatasetError(path, f"non-numeric fx / fy ({error})") from error
    return {image: np.array(values, dtype=np.float64) for image, values in points.items()}


def read_rss2015(root: str | pathlib.Path, split: str | None = "all", *, skip_bad: bool = False,
                 outside: str = "drop") -> ReadResult:
    """rss2015 examples (normal condition): images with their fixations converted to internal 0-based (x, y)."""
    split = split or "all"
    if split not in SPLITS:
        raise ValueError(f"rss2015 has one split, 'all' (or None), got {split!r}")
    root = pathlib.Path(root)
    csv_path = root / "data.csv"
    by_image = _read_csv(csv_path)
    images = list_images(root / "images" / CONDITION)
    collector = Collector("rss2015/all", skip_bad)
    numbers = {stem.removesuffix("_c"): stem for stem in images if stem.endswith("_c")}
    for number in sorted(set(by_image) - set(numbers), key=lambda n: (len(n), n)):
        with collector.item():
            raise DatasetError(csv_path, f"fixations for image {number}, but {root / 'images' / CONDITION} "
                                         f"has no {number}_c image")
    for number in sorted(numbers, key=lambda n: (len(n), n)):
        stem = numbers[number]
        if number not in by_image:
            with collector.item():
                raise DatasetError(images[stem], f"image without labels (no '{CONDITION}' rows in {csv_path})")
            continue

        def points(hw, centred=by_image[number], number=number):
            height, width = hw
            xy = np.stack([centred[:, 0] + width / 2, height / 2 - centred[:, 1]], axis=1)
            return xy, f"{csv_path}[image {number}]"

        example_from_files(collector, stem, images[stem], outside, points)
    return collector.result()

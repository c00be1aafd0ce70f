"""hamburg_cv2: a course set of 3,001 photographs with fixation density maps (mpn1008/eye-fixation-prediction;
no license stated: research use).

Layout: `data/training/images/train/image-N.png` (RGB) and `data/training/fixations/train/fixation-N.png`
(8-bit grayscale continuous fixation density, maximum about 255), all 224×224. The originals were resized
without keeping their aspect ratio, and their observers are not documented. There are **no fixation
points**: examples carry the map only, so training uses it as the target density and evaluation scores the
set with the map metrics (CC, KLD, SIM); metrics that need points are skipped there.

Splits: "all" (or None), and the fixed 2,801 / 200 "train" / "validation" split of
fastsal_tf/data/hamburg_cv2_split.json (training/splits/make_extra_splits.py), which keeps every group of
near-identical images (16 pairs carry different maps) on one side. Example ids are "image-N".
"""

from __future__ import annotations

import pathlib

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import example_from_files, pair_by_stem
from fastsal_tf.data.readers.splits import load_split

SPLITS = ("all", "train", "validation")
IMAGES = pathlib.Path("data/training/images/train")
MAPS = pathlib.Path("data/training/fixations/train")


def hamburg_split(path: str | pathlib.Path | None = None) -> dict[str, list[str]]:
    """The fixed split {"train": [2,801 ids], "validation": [200 ids]} (ids "image-N")."""
    return load_split("hamburg_cv2_split.json", ("train", "validation"), path)


def read_hamburg(root: str | pathlib.Path, split: str | None = "all", *,
                 split_file: str | pathlib.Path | None = None, skip_bad: bool = False,
                 outside: str = "error") -> ReadResult:
    """hamburg_cv2 examples (map only, no fixations) of split "all" (None), "train" or "validation"."""
    split = split or "all"
    if split not in SPLITS:
        raise ValueError(f"hamburg_cv2 split must be one of {SPLITS}, got {split!r}")
    root = pathlib.Path(root)
    images = list_images(root / IMAGES)
    maps = {f"image-{stem.removeprefix('fixation-')}": path for stem, path in list_images(root / MAPS).items()}
    collector = Collector(f"hamburg_cv2/{split}", skip_bad)
    if split == "all":
        ids = pair_by_stem(images, maps, collector, f"fixation map in {MAPS}")
    else:
        ids = hamburg_split(split_file)[split]
        missing = [i for i in ids if i not in images or i not in maps]
        for example_id in missing:
            with collector.item():
                missing_file = (IMAGES / f"{example_id}.png" if example_id not in images
                                else MAPS / f"fixation-{example_id.removeprefix('image-')}.png")
                raise DatasetError(root / missing_file, "listed in the split file but not found")
        ids = [i for i in ids if i not in missing]
    for example_id in ids:
        example_from_files(collector, example_id, images[example_id], outside, None, maps[example_id])
    return collector.result()

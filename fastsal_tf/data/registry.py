"""Datasets by name: `read_dataset("osie", root, "validation")` for the programs (evaluate, training)."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable

from fastsal_tf.data.errors import ReadResult
from fastsal_tf.data.readers import (read_cat2000, read_eyecrowd, read_folder, read_hamburg, read_mit300, read_mit1003,
                                     read_osie, read_photos, read_rss2015, read_salicon, read_salicon_api_split)
from fastsal_tf.data.readers.eyecrowd import DENSITY_SIGMA_PX as EYECROWD_SIGMA
from fastsal_tf.data.readers.osie import PIXELS_PER_DEGREE as OSIE_PPD
from fastsal_tf.data.readers.rss2015 import DENSITY_SIGMA_PX as RSS2015_SIGMA


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its reader reader(root, split, **options) -> ReadResult, its split names (None
    first when reading everything is allowed), its pixels per degree of visual angle where known, and the
    density Gaussian its authors use (sigma in stored pixels) where it has no known pixels per degree.
    split_file: whether the reader takes a split_file option (a JSON of its fixed splits)."""

    name: str
    reader: Callable[..., ReadResult]
    splits: tuple[str | None, ...]
    pixels_per_degree: float | None = None
    density_sigma_px: float | None = None
    split_file: bool = False

    @property
    def sigma_px(self) -> float | None:
        """The density sigma in stored pixels: 1 degree where the pixels per degree are known, else the
        dataset's own density_sigma_px, else None."""
        return self.pixels_per_degree if self.pixels_per_degree is not None else self.density_sigma_px


_SPECS = (
    DatasetSpec("salicon", functools.partial(read_salicon, release="2017"), ("train", "validation", "test")),
    DatasetSpec("salicon2015", functools.partial(read_salicon, release="2015"), ("train", "validation", "test")),
    DatasetSpec("salicon_api", read_salicon_api_split, ("train2014", "val2014")),
    DatasetSpec("mit1003", read_mit1003, (None, "train")),
    DatasetSpec("mit300", read_mit300, (None, "test")),
    DatasetSpec("cat2000", read_cat2000, ("train", "test")),
    DatasetSpec("osie", read_osie, (None, "train", "validation"), OSIE_PPD, split_file=True),
    DatasetSpec("eyecrowd", read_eyecrowd, ("all", "train", "validation"), density_sigma_px=EYECROWD_SIGMA,
                split_file=True),
    DatasetSpec("hamburg_cv2", read_hamburg, ("all", "train", "validation"), split_file=True),
    DatasetSpec("rss2015", read_rss2015, ("all",), density_sigma_px=RSS2015_SIGMA),
    DatasetSpec("folder", read_folder, (None,)),
    DatasetSpec("photos", read_photos, (None,)),
)
DATASETS = {spec.name: spec for spec in _SPECS}


def get_reader(name: str) -> DatasetSpec:
    """The DatasetSpec registered under name (see DATASETS for the names)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def read_dataset(name: str, root: str | pathlib.Path, split: str | None = None, **options) -> ReadResult:
    """Reads split of dataset name under root; options (skip_bad, outside, ...) go to its reader.

    split None selects the dataset's first split (everything, where the dataset allows it).
    The salicon_api reader also takes any other split name with the API layout (e.g. "train2014examples").
    """
    spec = get_reader(name)
    return spec.reader(root, spec.splits[0] if split is None else split, **options)

"""SALICON: the per-image .mat release (2017 = LSUN 2017, 2015 = LSUN 2016) and the SALICON API JSON.

.mat release, layout `images/{train,val,test}/<name>.jpg`, `maps/{train,val}/<name>.png` (continuous maps),
`fixations/{train,val}/<name>.mat`. Each .mat holds `gaze`, a struct array with one entry per observer
(N×1 in 2017, 1×N in 2015: the reader checks it matches the requested release, since the two ground truths
differ), whose `fixations` are M×2 **[x, y] 1-based** pixel coordinates; converted to internal 0-based
(x, y) by subtracting 1. `resolution` = [H W] is checked against the image.

API JSON (COCO style), layout `annotations/fixations_<split>.json` and `images/<split>/`: one annotation per
observer with `fixations` as **[row, col] 1-based**; converted to internal (x, y) = (col − 1, row − 1).
The older API variant with raw [x, y] float samples is rejected (non-integer coordinates).
Images are taken as stored (no EXIF rotation).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import list_images
from fastsal_tf.data.readers.common import as_points, example_from_files, load_mat, mat_field, pair_by_stem

SPLITS = {"train": "train", "validation": "val", "test": "test"}
RELEASES = ("2017", "2015")


def _mat_points(mat_path: pathlib.Path, release: str, image_hw: tuple[int, int]) -> np.ndarray:
    data = load_mat(mat_path, squeeze_me=False, struct_as_record=False)
    gaze = data.get("gaze")
    if not isinstance(gaze, np.ndarray) or gaze.ndim != 2 or gaze.dtype != object:
        raise DatasetError(mat_path, "unexpected .mat structure: no struct array 'gaze'")
    rows, cols = gaze.shape
    found = "2017" if cols == 1 and rows > 1 else "2015" if rows == 1 and cols > 1 else None
    if found is not None and found != release:
        raise DatasetError(mat_path, f"gaze is {rows}x{cols}: a SALICON {found} file, but "
                                     f"release {release!r} was requested (their ground truths differ)")
    resolution = np.asarray(data.get("resolution", image_hw)).ravel()
    if tuple(int(v) for v in resolution) != tuple(image_hw):
        raise DatasetError(mat_path, f"resolution {resolution.tolist()} differs from the image's (H, W) "
                                     f"{list(image_hw)}")
    observers = [as_points(mat_field(g, "fixations", mat_path, f"gaze({k + 1})"), mat_path,
                           f"gaze({k + 1}).fixations") for k, g in enumerate(gaze.ravel())]
    return np.concatenate(observers or [np.zeros((0, 2))]) - 1.0


def read_salicon(root: str | pathlib.Path, split: str = "train", *, release: str = "2017", skip_bad: bool = False,
                 outside: str = "error") -> ReadResult:
    """SALICON .mat release examples; split "train", "validation" or "test" (images only, no labels)."""
    if split not in SPLITS:
        raise ValueError(f"SALICON split must be one of {tuple(SPLITS)}, got {split!r}")
    if release not in RELEASES:
        raise ValueError(f"SALICON release must be one of {RELEASES}, got {release!r}")
    root = pathlib.Path(root)
    folder = SPLITS[split]
    images = list_images(root / "images" / folder)
    collector = Collector(f"salicon{release}/{split}", skip_bad)
    if split == "test":
        for stem, path in images.items():
            example_from_files(collector, stem, path, outside)
        return collector.result()
    mats = {p.stem: p for p in sorted((root / "fixations" / folder).glob("*.mat"))}
    for stem in pair_by_stem(images, mats, collector, "fixations .mat"):
        map_path = root / "maps" / folder / f"{stem}.png"
        example_from_files(collector, stem, images[stem], outside,
                           lambda hw, m=mats[stem]: (_mat_points(m, release, hw), m), map_path)
    return collector.result()


def _json_points(annotations: list[dict], json_path: pathlib.Path, image_id) -> np.ndarray:
    pairs = [as_points(a.get("fixations", []), json_path, f"annotation {a.get('id')} of image {image_id}")
             for a in annotations]
    rows_cols = np.concatenate(pairs or [np.zeros((0, 2))])
    if np.any(rows_cols != np.round(rows_cols)):
        raise DatasetError(json_path, f"image {image_id}: non-integer coordinates; this looks like the older SALICON "
                                      "API variant with raw [x, y] samples, which is not supported")
    return rows_cols[:, ::-1] - 1.0


def read_salicon_api(annotation_file: str | pathlib.Path, image_dir: str | pathlib.Path, *, skip_bad: bool = False,
                     outside: str = "error") -> ReadResult:
    """Examples of a SALICON API fixations JSON whose images are in image_dir."""
    json_path = pathlib.Path(annotation_file)
    image_dir = pathlib.Path(image_dir)
    try:
        data = json.loads(json_path.read_text())
        images = {entry["id"]: entry for entry in data["images"]}
        annotations = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(json_path, f"not a SALICON API fixations file ({error!r})") from error
    by_image: dict[object, list[dict]] = {}
    for annotation in annotations:
        by_image.setdefault(annotation.get("image_id"), []).append(annotation)
    collector = Collector(f"salicon_api/{json_path.stem}", skip_bad)
    for image_id in sorted(set(by_image) - set(images), key=str):
        with collector.item():
            raise DatasetError(json_path, f"annotations for image id {image_id}, which is not listed in 'images'")
    for image_id, entry in sorted(images.items(), key=lambda item: str(item[1].get("file_name"))):
        path = image_dir / str(entry.get("file_name"))
        if image_id not in by_image:
            with collector.item():
                raise DatasetError(path, f"image without labels (no annotation in {json_path})")
            continue

        def points(hw, image_id=image_id, entry=entry, path=path):
            if (entry.get("height"), entry.get("width")) != tuple(hw):
                raise DatasetError(json_path, f"image {image_id} is listed as {entry.get('width')}x"
                                              f"{entry.get('height')} but {path} is {hw[1]}x{hw[0]}")
            return _json_points(by_image[image_id], json_path, image_id), f"{json_path}[image {image_id}]"

        example_from_files(collector, path.stem, path, outside, points)
    return collector.result()


def read_salicon_api_split(root: str | pathlib.Path, split: str, *, skip_bad: bool = False,
                           outside: str = "error") -> ReadResult:
    """API layout under root: annotations/fixations_<split>.json with images in images/<split>/
    (e.g. split "train2014", "val2014", or "train2014examples" for the API's example files)."""
    root = pathlib.Path(root)
    return read_salicon_api(root / "annotations" / f"fixations_{split}.json", root / "images" / split,
                            skip_bad=skip_bad, outside=outside)

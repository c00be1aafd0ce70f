"""Any folder of photographs without labels (for pseudo-labelling): every supported image below root,
recursively, in sorted path order.

Example ids are the paths relative to root without the suffix, with "/" separators ("sub/name"), so equal
stems in different sub-folders stay distinct; two files differing only in suffix ("a.jpg", "a.png") are an
error naming both. Hidden files and folders (".name") are left out. Images are taken as stored (no EXIF
rotation). A bad image (unreadable, truncated, unsupported format) is skipped and listed by name in
ReadResult.skipped (skip_bad=False: an error naming it).
"""

from __future__ import annotations

import pathlib

from fastsal_tf.data.errors import Collector, DatasetError, ReadResult
from fastsal_tf.data.images import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES
from fastsal_tf.data.readers.common import example_from_files


def list_photos(root: str | pathlib.Path) -> dict[str, pathlib.Path]:
    """{id: path} of the image files below root (by suffix, unsupported image types included, not opened),
    in sorted path order; DatasetError for a missing folder or two files with one id."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise DatasetError(root, "folder not found")
    suffixes = IMAGE_SUFFIXES + UNSUPPORTED_SUFFIXES
    found: dict[str, pathlib.Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in suffixes:
            continue
        if not path.is_file():
            continue
        example_id = relative.with_suffix("").as_posix()
        if example_id in found:
            raise DatasetError(path, f"two images share the id {example_id!r} ({found[example_id].name})")
        found[example_id] = path
    return found


def read_photos(root: str | pathlib.Path, split: str | None = None, *, skip_bad: bool = True,
                outside: str = "error") -> ReadResult:
    """Unlabelled examples of every image below root (no splits: split must be None or "all")."""
    if split not in (None, "all"):
        raise ValueError(f"a photo folder has no splits, got {split!r}")
    root = pathlib.Path(root)
    collector = Collector(f"photos/{root.name}", skip_bad)
    for example_id, path in list_photos(root).items():
        example_from_files(collector, example_id, path, outside)
    if not collector.examples:
        raise DatasetError(root, f"no images in the folder or its sub-folders ({', '.join(IMAGE_SUFFIXES)})"
                                 + (f"; {len(collector.skipped)} skipped as bad" if collector.skipped else ""))
    return collector.result()

"""Teacher pseudo-labels (e.g. COCO images labelled by a teacher model) as sharded TFRecords.

Record schema (tf.train.Example, schema/version 1):
  image/encoded    bytes   the image file as stored (JPEG/PNG...; no EXIF rotation is applied to it)
  image/id         bytes   UTF-8 id (e.g. the COCO file stem)
  image/height     int64   stored image height in pixels
  image/width      int64   stored image width in pixels
  label/encoded    bytes   the label map: a grayscale 8-bit PNG, or raw little-endian float16 (row-major)
  label/format     bytes   "png" or "float16"
  label/height     int64   label height; the label covers the whole image frame (any resolution)
  label/width      int64   label width
  label/kind       bytes   "map" (values in [0, 1], e.g. SalGAN) or "prob" (sums to 1, e.g. DeepGaze II)
  teacher/name     bytes   provenance: teacher model name
  teacher/version  bytes   provenance: teacher version (weights, commit...)
  schema/version   int64   1
A "map" is stored as it is (PNG: round(255·map)); a "prob" is stored divided by its maximum (float16 keeps
its relative precision that way; PNG: round(255·prob / max)) and renormalised to sum 1 when read.
Shards are named <prefix>-<index:05d>-of-<count:05d>.tfrecord.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from fastsal_tf.data.density import normalise_sum
from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.images import inspect_image_bytes

SCHEMA_VERSION = 1
LABEL_KINDS = ("map", "prob")
LABEL_STORAGE = ("png", "float16")
_SHARD = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/id": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "label/encoded": tf.io.FixedLenFeature([], tf.string),
    "label/format": tf.io.FixedLenFeature([], tf.string),
    "label/height": tf.io.FixedLenFeature([], tf.int64),
    "label/width": tf.io.FixedLenFeature([], tf.int64),
    "label/kind": tf.io.FixedLenFeature([], tf.string),
    "teacher/name": tf.io.FixedLenFeature([], tf.string),
    "teacher/version": tf.io.FixedLenFeature([], tf.string),
    "schema/version": tf.io.FixedLenFeature([], tf.int64),
}


def _check_label(label: np.ndarray, kind: str, image_id: str) -> np.ndarray:
    label = np.asarray(label, dtype=np.float64)
    if label.ndim == 3 and label.shape[-1] == 1:
        label = label[..., 0]
    if kind not in LABEL_KINDS:
        raise ValueError(f"label kind must be one of {LABEL_KINDS}, got {kind!r}")
    if label.ndim != 2 or min(label.shape) < 1:
        raise DatasetError(image_id, f"label must be a 2-D map, got shape {label.shape}")
    if not np.all(np.isfinite(label)) or label.min() < 0:
        raise DatasetError(image_id, "label has NaN, Inf or negative values")
    if kind == "map" and label.max() > 1:
        raise DatasetError(image_id, f"a 'map' label must lie in [0, 1], max is {label.max():g}")
    if kind == "prob" and abs(label.sum() - 1) > 1e-3:
        raise DatasetError(image_id, f"a 'prob' label must sum to 1, sums to {label.sum():g}")
    return label


def _encode_label(label: np.ndarray, kind: str, storage: str) -> bytes:
    if kind == "prob":
        label = label / max(label.max(), 1e-30)
    if storage == "float16":
        return label.astype("<f2").tobytes()
    buffer = io.BytesIO()
    Image.fromarray(np.round(label * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def encode_pseudo_label(image_bytes: bytes, image_id: str, label: np.ndarray, kind: str, teacher: str,
                        teacher_version: str, storage: str = "png") -> bytes:
    """A serialized record; label: (h, w) (or (h, w, 1)) float of the given kind covering the whole image.

    Raises DatasetError naming image_id for an undecodable image or an invalid label.
    """
    if storage not in LABEL_STORAGE:
        raise ValueError(f"label storage must be one of {LABEL_STORAGE}, got {storage!r}")
    height, width = inspect_image_bytes(image_bytes, image_id)
    label = _check_label(label, kind, image_id)

    def strings(value: str):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))

    def ints(value: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "image/id": strings(image_id), "image/height": ints(height), "image/width": ints(width),
        "label/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_encode_label(label, kind, storage)])),
        "label/format": strings(storage), "label/height": ints(label.shape[0]), "label/width": ints(label.shape[1]),
        "label/kind": strings(kind), "teacher/name": strings(teacher), "teacher/version": strings(teacher_version),
        "schema/version": ints(SCHEMA_VERSION),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class PseudoLabelWriter:
    """Writes one shard atomically: records go to <path>.tmp, renamed to path on a clean close.

    with PseudoLabelWriter(shard_path(out_dir, index, count)) as writer:
        writer.write(image_bytes, image_id, label, "prob", "deepgaze2e", "1.0")
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._writer = tf.io.TFRecordWriter(str(self._tmp))
        self.count = 0

    def write(self, image_bytes: bytes, image_id: str, label: np.ndarray, kind: str, teacher: str,
              teacher_version: str, storage: str = "png") -> None:
        """Adds one record (see encode_pseudo_label)."""
        self._writer.write(encode_pseudo_label(image_bytes, image_id, label, kind, teacher, teacher_version, storage))
        self.count += 1

    def close(self) -> None:
        """Finishes the shard: flushes and renames the temporary file to path."""
        self._writer.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Abandons the shard: nothing is left at path or at the temporary file."""
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PseudoLabelWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def shard_path(directory: str | os.PathLike, index: int, count: int, prefix: str = "pseudo_labels") -> pathlib.Path:
    """directory/<prefix>-<index:05d>-of-<count:05d>.tfrecord (index is 0-based)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in [0, {count})")
    return pathlib.Path(directory) / f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


def list_shards(directory: str | os.PathLike) -> list[pathlib.Path]:
    """The complete, sorted set of shards in directory; DatasetError if none, several sets, or one missing."""
    directory = pathlib.Path(directory)
    found = [(m, p) for p in sorted(directory.glob("*.tfrecord")) if (m := _SHARD.match(p.name))]
    sets = {(m["prefix"], int(m["count"])) for m, _ in found}
    if len(sets) != 1:
        raise DatasetError(directory, f"expected one set of pseudo-label shards, found {len(sets)}")
    (prefix, count), = sets
    missing = sorted(set(range(count)) - {int(m["index"]) for m, _ in found})
    if missing:
        raise DatasetError(directory, f"shards missing from {prefix}: indices {missing[:10]}")
    return [p for _, p in found]


def decode_label(encoded: tf.Tensor, storage: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                 kind: tf.Tensor) -> tf.Tensor:
    """(height, width, 1) float32 label: "map" in [0, 1], "prob" renormalised to sum 1."""
    shape = tf.stack([tf.cast(height, tf.int32), tf.cast(width, tf.int32), 1])
    label = tf.cond(tf.equal(storage, "float16"),
                    lambda: tf.cast(tf.reshape(tf.io.decode_raw(encoded, tf.float16, little_endian=True), shape),
                                    tf.float32),
                    lambda: tf.reshape(tf.cast(tf.io.decode_png(encoded, channels=1), tf.float32) / 255.0, shape))
    return tf.cond(tf.equal(kind, "prob"), lambda: normalise_sum(label), lambda: label)


def parse_pseudo_label(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """One serialized record → {"image" (encoded bytes), "id", "height", "width" (int32), "label"
    (label_h, label_w, 1) float32, "kind", "teacher", "teacher_version"}."""
    record = tf.io.parse_single_example(serialized, _FEATURES)
    return {
        "image": record["image/encoded"], "id": record["image/id"],
        "height": tf.cast(record["image/height"], tf.int32), "width": tf.cast(record["image/width"], tf.int32),
        "label": decode_label(record["label/encoded"], record["label/format"], record["label/height"],
                              record["label/width"], record["label/kind"]),
        "kind": record["label/kind"], "teacher": record["teacher/name"],
        "teacher_version": record["teacher/version"],
    }


def read_pseudo_labels(files: Sequence[str | os.PathLike], deterministic: bool = True) -> tf.data.Dataset:
    """Parsed records (see parse_pseudo_label) of the given shard files, read in parallel."""
    if not files:
        raise ValueError("no pseudo-label files given")
    records = tf.data.TFRecordDataset([str(f) for f in files], num_parallel_reads=tf.data.AUTOTUNE)
    return records.map(parse_pseudo_label, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def shard_provenance(path: str | os.PathLike) -> dict[str, object]:
    """{"teacher", "teacher_version", "kind", "label_hw"} of the first record of a shard file; DatasetError
    naming it when it is empty or not a pseudo-label shard."""
    try:
        first = next(iter(tf.data.TFRecordDataset([str(path)]).take(1)), None)
        if first is None:
            raise DatasetError(path, "the shard holds no records")
        record = tf.io.parse_single_example(first, _FEATURES)
    except tf.errors.OpError as error:
        raise DatasetError(path, f"not a pseudo-label shard ({error.message.splitlines()[0]})") from None
    return {"teacher": record["teacher/name"].numpy().decode(),
            "teacher_version": record["teacher/version"].numpy().decode(),
            "kind": record["label/kind"].numpy().decode(),
            "label_hw": (int(record["label/height"]), int(record["label/width"]))}


def check_shards(files: Sequence[str | os.PathLike]) -> dict[str, object]:
    """The provenance shared by every shard (see shard_provenance); DatasetError naming the first shard
    written by another teacher (name or version), with another label kind or at another label size."""
    if not files:
        raise ValueError("no pseudo-label files given")
    reference = shard_provenance(files[0])
    for path in files[1:]:
        found = shard_provenance(path)
        differs = [key for key in reference if found[key] != reference[key]]
        if differs:
            key = differs[0]
            raise DatasetError(path, f"{key} is {found[key]!r} but {pathlib.Path(files[0]).name} has "
                                     f"{reference[key]!r}: shards of one set must come from one teacher run")
    return reference

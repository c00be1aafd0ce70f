"""Pseudo-labelling: run a saliency teacher over images and write sharded TFRecords (fastsal_tf.data.pseudo_labels).

`pseudo_label(config)` is everything `training/pseudo_label.py` does.

Images: an image folder (`images`, every image in it and its sub-folders, ids "sub/stem" as read by
fastsal_tf.data.readers.read_photos, taken as stored — no EXIF rotation) or a dataset split (`dataset`,
`data_dir`, `split`; see fastsal_tf.data.registry). They are sorted by id
and shard i of N takes images i, i+N, i+2N, … of that list, so machines labelling different shard indices
of the same N together cover every image once. A shard is written atomically (a temporary file renamed
when complete); a shard file already present and readable is skipped, so rerunning an interrupted command
only does the missing shards.

Teachers (`teacher`):
  * a .keras model whose input is RGB 0–255 images and whose output is a saliency map — FastSal (outputs
    logits / map / prob) or any model with an (N, h, w[, 1]) output;
  * a SavedModel directory (its serving_default signature, same convention);
  * a LiteRT .tflite file (run with ai_edge_litert's Interpreter; quantised inputs and outputs handled);
  * a folder of precomputed maps (grayscale images, 8 or 16 bit, or .npy float arrays) matched to the
    images by file stem;
  * an ensemble: several model teachers separated by commas ("a.keras,b.keras,c.tflite"), all taking the
    same input frame; the label is the mean of the members' labels, each converted to `label_kind` first
    (a mean of probability maps is a probability map, a mean of [0, 1] maps lies in [0, 1]).
With `flip`, a model teacher's label is the mean of its label and the mirrored label of the mirrored image
(its default name gets "+flip").
The output is chosen by name (`teacher_output`, else by the kind it holds: "map"/"saliency"/"sigmoid",
"logits", "prob"), preferring the one matching `label_kind`; a single output of another name is classified
from its values.

What is stored (label/kind, see the schema in fastsal_tf.data.pseudo_labels):
  * label_kind "map": the teacher's sigmoid map in [0, 1] (from a logits output: its sigmoid; from a
    probability-only teacher: prob / max(prob)); precomputed maps: the file's values / 255 (or the .npy
    values, which must lie in [0, 1]).
  * label_kind "prob": the teacher's probability map, summing to 1 over the image (from a map output: the
    softmax of its logit, p ∝ m / (1 − m), which is FastSal's own prob; from logits: their softmax over
    pixels); precomputed maps: the map divided by its sum. The schema stores a prob divided by its maximum
    and renormalises it when read.
  * label_size "network": the label at the teacher's output resolution for the image stretched to the
    network frame (e.g. 192×256 whatever the image's size; precomputed maps: as stored) — it covers the
    whole image, which is all the schema asks; "image": resized (bilinear, antialiased) to the stored image
    size, a prob renormalised to sum 1.
  * label_format "png" (8-bit, round(255·value)) or "float16"; teacher/name and teacher/version
    (default: the teacher's file name and "sha256:<first 16 hex digits>" of its file).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from fastsal_tf.data.errors import DatasetError, Skipped
from fastsal_tf.data.geometry import resize_image
from fastsal_tf.data.images import inspect_image
from fastsal_tf.data.pseudo_labels import LABEL_KINDS, LABEL_STORAGE, PseudoLabelWriter, shard_path
from fastsal_tf.data.readers.photos import list_photos
from fastsal_tf.data.registry import read_dataset
from fastsal_tf.imaging import IMAGE_SUFFIXES, normalize_map
from fastsal_tf.train.label_teachers import (FlipAveragedTeacher, MapFolderTeacher, load_map_teacher,
                                            teacher_provenance)

LABEL_SIZES = ("network", "image")


@dataclasses.dataclass
class PseudoLabelConfig:
    """Settings of one pseudo-labelling run (see training/pseudo_label.py for each flag's help)."""

    out_dir: str
    teacher: str
    images: str = ""  # a folder of images, or:
    dataset: str = ""  # a dataset name (fastsal_tf.data.registry) with data_dir and split
    data_dir: str = ""
    split: str = ""  # "" → the dataset's first split
    split_file: str = ""  # OSIE: a split JSON other than the packaged one
    num_shards: int = 1
    shard_index: int | None = None  # None: every shard, one after the other
    label_kind: str = "prob"
    label_size: str = "network"
    label_format: str = "png"
    teacher_name: str = ""
    teacher_version: str = ""
    teacher_output: str = ""
    input_size: tuple[int, int] = (192, 256)  # network frame for teachers with a flexible input size
    batch_size: int = 8
    skip_bad: bool = False
    prefix: str = "pseudo_labels"
    flip: bool = False  # average each label with the mirrored label of the mirrored image

    def check(self):
        if self.label_kind not in LABEL_KINDS:
            raise ValueError(f"label_kind must be one of {LABEL_KINDS}, got {self.label_kind!r}")
        if self.label_size not in LABEL_SIZES:
            raise ValueError(f"label_size must be one of {LABEL_SIZES}, got {self.label_size!r}")
        if self.label_format not in LABEL_STORAGE:
            raise ValueError(f"label_format must be one of {LABEL_STORAGE}, got {self.label_format!r}")
        if self.num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, got {self.num_shards}")
        if self.shard_index is not None and not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index {self.shard_index} is not in [0, {self.num_shards})")
        if bool(self.images) == bool(self.dataset):
            raise ValueError("give either an image folder (images) or a dataset (dataset, data_dir, split)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclasses.dataclass
class ShardReport:
    """One shard: "written" now or "skipped" (already complete); records in it; images skipped as bad."""

    index: int
    path: pathlib.Path
    status: str
    count: int
    skipped: list[Skipped] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PseudoLabelReport:
    teacher: str
    teacher_version: str
    num_images: int
    shards: list[ShardReport]


# ---------------------------------------------------------------- labels


def resize_label(label, hw, kind):
    """A (h, w) label resized (bilinear, antialiased) to hw; a prob renormalised to sum 1."""
    if tuple(label.shape) == tuple(hw):
        return label
    resized = tf.image.resize(tf.constant(label[..., None], tf.float32), hw, method="bilinear", antialias=True)
    resized = np.maximum(resized.numpy()[..., 0].astype(np.float64), 0.0)
    if kind == "prob":
        return normalize_map(resized)
    return np.clip(resized, 0.0, 1.0)


# ---------------------------------------------------------------- images and shards


def list_inputs(config):
    """[(id, image path)] sorted by id: the image folder's files or the dataset split's images."""
    options = {"skip_bad": True} if config.skip_bad else {}
    if config.images:
        folder = pathlib.Path(config.images)
        if not folder.is_dir():
            raise ValueError(f"{folder}: image folder not found")
        items = sorted(list_photos(folder).items())
        if not items:
            raise ValueError(f"{folder}: no images in the folder or its sub-folders ({', '.join(IMAGE_SUFFIXES)})")
        return items
    if config.split_file:
        options["split_file"] = config.split_file
    result = read_dataset(config.dataset, config.data_dir, config.split or None, **options)
    items = sorted({e.id: e.image_path for e in result}.items())
    if not items:
        raise ValueError(f"{config.dataset} split {config.split or '(all)'!r} under {config.data_dir} has no images")
    return items


def shard_items(items, index, count):
    """Images index, index + count, … of the sorted list."""
    return items[index::count]


_RECORD_FRAMING = 16  # TFRecord: length (8) + its CRC (4) + data + data CRC (4)


def _existing_shard(path, teacher_name, label_kind, expected_ids, skip_bad):
    """Records in a finished shard at path, or None when there is none or it is damaged (unreadable, bytes
    left over after its last whole record, or images missing — unless skip_bad, which leaves bad ones out).
    A shard of another teacher or label kind, or holding images its shard of the list does not have, is an
    error: that out_dir belongs to another run."""
    if not path.is_file():
        return None
    ids, size = [], 0
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            data = record.numpy()
            features = tf.train.Example.FromString(data).features.feature
            if not ids:
                found = (features["teacher/name"].bytes_list.value[0].decode(),
                         features["label/kind"].bytes_list.value[0].decode())
                if found != (teacher_name, label_kind):
                    raise ValueError(f"{path} holds labels of teacher {found[0]!r} ({found[1]}), not "
                                     f"{teacher_name!r} ({label_kind}); use another out_dir")
            ids.append(features["image/id"].bytes_list.value[0].decode())
            size += len(data) + _RECORD_FRAMING
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError):
        return None
    if size != path.stat().st_size:
        return None
    unexpected = sorted(set(ids) - set(expected_ids))
    if unexpected:
        raise ValueError(f"{path} holds images its shard of the image list does not have ({unexpected[:3]}): the "
                         "images or num_shards changed since it was written; use another out_dir")
    if len(ids) < len(expected_ids) and not skip_bad:
        return None
    return len(ids)


def _check_out_dir(out_dir, prefix, num_shards):
    other = sorted(p.name for p in pathlib.Path(out_dir).glob(f"{prefix}-*-of-*.tfrecord")
                   if not p.name.endswith(f"-of-{num_shards:05d}.tfrecord"))
    if other:
        raise ValueError(f"{out_dir} already holds shards of another shard count ({other[0]}, ...); use another "
                         "out_dir or the same num_shards")


def _decode(path):
    """(encoded bytes, uint8 (H, W, 3) RGB as stored) — DatasetError naming the file if unreadable."""
    inspect_image(path)
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(path, f"unreadable image ({error})") from error
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        raise DatasetError(path, f"unreadable or corrupt image ({error.message})") from error
    return data, image


def _write_shard(writer, teacher, items, config, name, version, report, progress):
    batch_size = min(config.batch_size, teacher.batch_limit or config.batch_size)
    for start in range(0, len(items), batch_size):
        batch = []
        for image_id, path in items[start:start + batch_size]:
            try:
                data, image = _decode(path)
                batch.append((image_id, data, image))
            except DatasetError as error:
                if not config.skip_bad:
                    raise
                report.skipped.append(Skipped(error.path, error.reason))
        if isinstance(teacher, MapFolderTeacher):
            labels = []
            for image_id, data, image in batch:
                try:
                    labels.append(teacher.label_for(image_id, config.label_kind))
                except DatasetError as error:
                    if not config.skip_bad:
                        raise
                    report.skipped.append(Skipped(error.path, error.reason))
                    labels.append(None)
        elif batch:
            frames = np.stack([resize_image(image, teacher.input_hw, "stretch").numpy() for _, _, image in batch])
            labels = teacher.label(frames, config.label_kind)
        else:
            labels = []
        for (image_id, data, image), label in zip(batch, labels):
            if label is None:
                continue
            if config.label_size == "image":
                label = resize_label(label, tuple(image.shape[:2]), config.label_kind)
            writer.write(data, image_id, label, config.label_kind, name, version, config.label_format)
        if progress is not None:
            progress(min(len(items), start + batch_size))


def pseudo_label(config, progress: Callable[[int, int], None] | None = None):
    """Labels the images of the requested shard(s) and writes them; returns a PseudoLabelReport.

    progress(done, total) is called once the teacher is loaded (done = 0) and after each batch, with the
    images handled in this run so far and the number to handle (images of the shards being written).
    Raises ValueError (DatasetError naming the file for a bad image or map, unless skip_bad) — the shard
    being written is then discarded, finished ones stay.
    """
    config.check()
    items = list_inputs(config)
    default_name, default_version = teacher_provenance(config.teacher)
    default_name += "+flip" if config.flip else ""
    name = config.teacher_name or default_name
    version = config.teacher_version or default_version
    out = pathlib.Path(config.out_dir)
    _check_out_dir(out, config.prefix, config.num_shards)
    indices = range(config.num_shards) if config.shard_index is None else [config.shard_index]
    reports, todo = [], []
    for index in indices:
        path = shard_path(out, index, config.num_shards, config.prefix)
        expected = [image_id for image_id, _ in shard_items(items, index, config.num_shards)]
        count = _existing_shard(path, name, config.label_kind, expected, config.skip_bad)
        if count is None:
            todo.append(index)
        else:
            reports.append(ShardReport(index, path, "skipped", count))
    if todo:
        teacher = load_map_teacher(config.teacher, config.label_kind, config.teacher_output, tuple(config.input_size))
        if config.flip:
            teacher = FlipAveragedTeacher(teacher)
        out.mkdir(parents=True, exist_ok=True)
        total = sum(len(shard_items(items, i, config.num_shards)) for i in todo)
        done = 0
        if progress is not None:
            progress(0, total)
        for index in todo:
            path = shard_path(out, index, config.num_shards, config.prefix)
            shard = shard_items(items, index, config.num_shards)
            report = ShardReport(index, path, "written", 0)
            base = done
            step = None if progress is None else (lambda n, base=base: progress(base + n, total))
            with PseudoLabelWriter(path) as writer:
                _write_shard(writer, teacher, shard, config, name, version, report, step)
            report.count = writer.count
            done += len(shard)
            reports.append(report)
    reports.sort(key=lambda r: r.index)
    return PseudoLabelReport(name, version, len(items), reports)

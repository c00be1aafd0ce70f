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
import hashlib
import os
import pathlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from fastsal_tf.data.errors import DatasetError, Skipped
from fastsal_tf.data.geometry import resize_image
from fastsal_tf.data.images import IMAGE_SUFFIXES, inspect_image, read_gray
from fastsal_tf.data.pseudo_labels import LABEL_KINDS, LABEL_STORAGE, PseudoLabelWriter, shard_path
from fastsal_tf.data.readers.photos import list_photos
from fastsal_tf.data.registry import read_dataset
from fastsal_tf.predict.backends import head_kind, to_probabilities

LABEL_SIZES = ("network", "image")
MAP_SUFFIXES = IMAGE_SUFFIXES + (".npy",)
_OUTPUT_PREFERENCE = {"map": ("map", "logits", "prob"), "prob": ("prob", "logits", "map")}


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


# ---------------------------------------------------------------- labels from raw teacher outputs


def output_to_label(values, output_kind, label_kind):
    """(h, w) raw teacher output of kind "map" / "logits" / "prob" / None (classified from its values)
    → float64 label of label_kind (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("the teacher's output has NaN or Inf values")
    if label_kind == "prob":
        return to_probabilities(values[None].astype(np.float32), output_kind)[0].astype(np.float64)
    if output_kind is None:
        output_kind = "map" if values.min() >= 0 and values.max() <= 1 else "logits"
    if output_kind == "logits":
        return 1.0 / (1.0 + np.exp(-values))
    if output_kind == "prob":
        values = np.maximum(values, 0)
        return values / values.max() if values.max() > 0 else np.ones_like(values)
    return np.clip(values, 0.0, 1.0)


def resize_label(label, hw, kind):
    """A (h, w) label resized (bilinear, antialiased) to hw; a prob renormalised to sum 1."""
    if tuple(label.shape) == tuple(hw):
        return label
    resized = tf.image.resize(tf.constant(label[..., None], tf.float32), hw, method="bilinear", antialias=True)
    resized = np.maximum(resized.numpy()[..., 0].astype(np.float64), 0.0)
    if kind == "prob":
        return resized / resized.sum()
    return np.clip(resized, 0.0, 1.0)


def _spatial(shape):
    """(h, w) of an (N, h, w) or (N, h, w, 1) output shape, else None (not a saliency map)."""
    shape = tuple(shape)
    if len(shape) == 4 and shape[-1] == 1:
        return shape[1:3]
    if len(shape) == 3:
        return shape[1:3]
    return None


def choose_teacher_output(shapes, label_kind, wanted="", source="teacher"):
    """(name, kind) of the output to use among {name: shape}; ValueError when none is usable."""
    usable = {name: shape for name, shape in shapes.items() if _spatial(shape) is not None}
    described = ", ".join(f"{n} {tuple(s)}" for n, s in shapes.items()) or "none"
    if wanted:
        if wanted not in shapes:
            raise ValueError(f"{source}: no output {wanted!r} (outputs: {described})")
        if wanted not in usable:
            raise ValueError(f"{source}: output {wanted!r} has shape {tuple(shapes[wanted])}, not a saliency map "
                             "(N, H, W[, 1])")
        return wanted, head_kind(wanted)
    if not usable:
        raise ValueError(f"{source}: no usable teacher output — a saliency map of shape (N, H, W[, 1]) is needed "
                         f"(outputs: {described})")
    kinds = {name: head_kind(name) for name in usable}
    for kind in _OUTPUT_PREFERENCE[label_kind]:
        for name in usable:
            if kinds[name] == kind:
                return name, kind
    if len(usable) == 1:
        name, = usable
        return name, None
    raise ValueError(f"{source}: cannot tell which output is the saliency map among {sorted(usable)}; "
                     "name it (teacher_output)")


# ---------------------------------------------------------------- teachers


class _ModelTeacher:
    """Runs a network on (N, H, W, 3) float32 RGB 0–255 frames; returns (N, h, w) float32 raw outputs."""

    input_hw: tuple[int, int]
    output_name: str
    output_kind: str | None
    batch_limit: int | None = None

    def label(self, frames, label_kind):
        values = self.run(frames)
        return [output_to_label(v, self.output_kind, label_kind) for v in values]


class KerasTeacher(_ModelTeacher):
    def __init__(self, path, label_kind, wanted="", input_size=(192, 256)):
        import keras

        import fastsal_tf.models.layers  # noqa: F401  (registers fastsal_tf's layers)
        import fastsal_tf.train.teachers  # noqa: F401  (registers VGGPreprocess)

        try:
            model = keras.saving.load_model(path, compile=False)
        except (ValueError, OSError, TypeError) as error:
            raise ValueError(f"{path}: cannot load the Keras teacher ({error})") from error
        if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 or model.inputs[0].shape[-1] != 3:
            raise ValueError(f"{path}: a teacher takes one (N, H, W, 3) RGB image input, this model takes "
                             f"{[tuple(i.shape) for i in model.inputs]}")
        height, width = model.inputs[0].shape[1:3]
        self.input_hw = (int(height), int(width)) if height and width else tuple(input_size)
        output = model.output
        if isinstance(output, dict):
            tensors = dict(output)
        else:
            listed = list(output) if isinstance(output, (list, tuple)) else [output]
            names = list(getattr(model, "output_names", None) or [])
            names = names if len(names) == len(listed) else [f"output_{i}" for i in range(len(listed))]
            tensors = dict(zip(names, listed))
        self.output_name, self.output_kind = choose_teacher_output(
            {n: t.shape for n, t in tensors.items()}, label_kind, wanted, path)
        names = list(tensors)
        index = names.index(self.output_name)
        is_dict = isinstance(output, dict)

        def forward(images):
            outputs = model(images, training=False)
            if is_dict:
                result = outputs[self.output_name]
            elif isinstance(outputs, (list, tuple)):
                result = outputs[index]
            else:
                result = outputs
            return tf.cast(result, tf.float32)

        self.model = model
        self._fn = tf.function(forward, input_signature=[tf.TensorSpec([None, *self.input_hw, 3], tf.float32)])

    def run(self, frames):
        values = self._fn(tf.constant(frames, tf.float32)).numpy()
        return values[..., 0] if values.ndim == 4 else values


class SavedModelTeacher(_ModelTeacher):
    def __init__(self, path, label_kind, wanted="", input_size=(192, 256)):
        try:
            loaded = tf.saved_model.load(path)
            signature = loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{path}: cannot load the SavedModel's serving_default signature ({error})") from error
        _, inputs = signature.structured_input_signature
        if len(inputs) != 1:
            raise ValueError(f"{path}: a teacher takes one image input, the signature takes {sorted(inputs)}")
        (self._input_name, spec), = inputs.items()
        if spec.shape.rank != 4 or spec.shape[-1] != 3:
            raise ValueError(f"{path}: a teacher takes (N, H, W, 3) RGB images, the signature takes {spec.shape}")
        height, width = spec.shape[1:3]
        self.input_hw = (int(height), int(width)) if height and width else tuple(input_size)
        self._dtype = spec.dtype
        self.output_name, self.output_kind = choose_teacher_output(
            {n: s.shape for n, s in signature.structured_outputs.items()}, label_kind, wanted, path)
        self._loaded = loaded  # keeps the signature's variables alive
        self._signature = signature

    def run(self, frames):
        images = tf.cast(tf.round(frames), self._dtype) if self._dtype.is_integer else tf.cast(frames, self._dtype)
        values = tf.cast(self._signature(**{self._input_name: images})[self.output_name], tf.float32).numpy()
        return values[..., 0] if values.ndim == 4 else values


class LiteRTTeacher(_ModelTeacher):
    batch_limit = 1

    def __init__(self, path, label_kind, wanted=""):
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=path, num_threads=os.cpu_count() or 1)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{path}: not a valid LiteRT model ({error})") from None
        inputs = interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][-1] != 3:
            raise ValueError(f"{path}: a teacher takes one (1, H, W, 3) image input, this model takes "
                             f"{[tuple(d['shape']) for d in inputs]}")
        if inputs[0]["shape"][0] != 1:
            interpreter.resize_tensor_input(inputs[0]["index"], [1, *inputs[0]["shape"][1:]])
        interpreter.allocate_tensors()
        outputs = interpreter.get_output_details()
        names = {d["index"]: d["name"] for d in outputs}
        signatures = interpreter.get_signature_list()
        if signatures:  # signature output names ("prob", "map") beat tensor names
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            for name, detail in interpreter.get_signature_runner(key).get_output_details().items():
                names[detail["index"]] = name
        by_name = {names[d["index"]]: d for d in outputs}
        self.output_name, self.output_kind = choose_teacher_output(
            {n: tuple(d["shape"]) for n, d in by_name.items()}, label_kind, wanted, path)
        self.input_hw = (int(inputs[0]["shape"][1]), int(inputs[0]["shape"][2]))
        self._input = inputs[0]
        self._output = by_name[self.output_name]
        self._interpreter = interpreter

    def _quantize(self, frame):
        dtype = np.dtype(self._input["dtype"])
        if np.issubdtype(dtype, np.floating):
            return frame.astype(dtype)[None]
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        values = np.round(frame / np.float32(scale) + zero_point) if scale else np.round(frame)
        return np.clip(values, info.min, info.max).astype(dtype)[None]

    def run(self, frames):
        results = []
        for frame in np.asarray(frames, np.float32):
            self._interpreter.set_tensor(self._input["index"], self._quantize(frame))
            self._interpreter.invoke()
            values = self._interpreter.get_tensor(self._output["index"])
            scale, zero_point = self._output["quantization"]
            values = (values.astype(np.float32) - zero_point) * scale if scale else values.astype(np.float32)
            results.append(values[0, ..., 0] if values.ndim == 4 else values[0])
        return np.stack(results)


class MapFolderTeacher:
    """Precomputed maps in a folder, matched to the images by file stem."""

    input_hw = None
    output_name = "precomputed"
    output_kind = "map"
    batch_limit = None

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.maps = {p.stem: p for p in sorted(self.folder.iterdir()) if p.suffix.lower() in MAP_SUFFIXES}
        if not self.maps:
            raise ValueError(f"{folder}: the teacher folder has no maps (image files or .npy) and is no SavedModel")

    def label_for(self, image_id, label_kind):
        path = self.maps.get(image_id)
        if path is None:
            raise DatasetError(self.folder / image_id, "no precomputed teacher map with this stem")
        if path.suffix.lower() == ".npy":
            try:
                values = np.load(path).astype(np.float64)
            except (OSError, ValueError) as error:
                raise DatasetError(path, f"unreadable .npy map ({error})") from error
            values = values[..., 0] if values.ndim == 3 and values.shape[-1] == 1 else values
        else:
            values = read_gray(path).astype(np.float64) / 255.0
        if values.ndim != 2 or not np.all(np.isfinite(values)) or values.min() < 0:
            raise DatasetError(path, "a teacher map must be a 2-D array of finite non-negative values")
        if label_kind == "prob":
            if not values.sum() > 0:
                raise DatasetError(path, "an all-zero map is no probability map")
            return values / values.sum()
        if values.max() > 1:
            raise DatasetError(path, f"a 'map' label must lie in [0, 1], max is {values.max():g}")
        return values


class EnsembleTeacher:
    """The mean label of several model teachers that take the same input frame."""

    output_name = "ensemble"
    output_kind = None

    def __init__(self, members, sources):
        frames = {tuple(m.input_hw) for m in members}
        if len(frames) > 1:
            raise ValueError(f"{','.join(sources)}: ensemble members take different input frames "
                             f"{sorted(frames)}; use teachers of one input size")
        self.members = members
        self.sources = sources
        self.input_hw = members[0].input_hw
        limits = [m.batch_limit for m in members if m.batch_limit]
        self.batch_limit = min(limits) if limits else None

    def label(self, frames, label_kind):
        per_member = [m.label(frames, label_kind) for m in self.members]
        shapes = {tuple(labels[0].shape) for labels in per_member}
        if len(shapes) > 1:
            raise ValueError(f"{','.join(self.sources)}: ensemble members give labels of different sizes "
                             f"{sorted(shapes)}")
        return [np.mean(labels, axis=0) for labels in zip(*per_member)]


class FlipAveragedTeacher:
    """Test-time flip averaging: the mean of a model teacher's label of the frames and the mirrored label of
    the mirrored frames (saliency is nearly mirror-symmetric; the average removes some of the noise)."""

    def __init__(self, teacher):
        if isinstance(teacher, MapFolderTeacher):
            raise ValueError("flip averaging needs a model teacher, not a folder of maps")
        self.teacher = teacher
        self.input_hw = teacher.input_hw
        self.batch_limit = teacher.batch_limit

    def label(self, frames, label_kind):
        plain = self.teacher.label(frames, label_kind)
        mirrored = self.teacher.label(np.ascontiguousarray(frames[:, :, ::-1]), label_kind)
        return [(a + b[:, ::-1]) / 2 for a, b in zip(plain, mirrored)]


def _file_version(path):
    path = pathlib.Path(path)
    file = path / "saved_model.pb" if path.is_dir() else path
    if not file.is_file():
        return ""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def teacher_sources(spec):
    """The teacher paths in a `teacher` setting: one, or an ensemble's members separated by commas."""
    sources = [s.strip() for s in os.fspath(spec).split(",")]
    if len(sources) > 1 and (len(sources) != len(set(sources)) or not all(sources)):
        raise ValueError(f"{spec}: an ensemble lists each teacher once, separated by commas")
    return sources


def teacher_provenance(spec):
    """Default (name, version) of a teacher: its file stem (a folder: its name) and the sha256 of its file; an
    ensemble is named "ensemble:" + its members' "<folder>/<stem>" joined by "+", its version hashes theirs."""
    paths = [pathlib.Path(s) for s in teacher_sources(spec)]
    if len(paths) == 1:
        path, = paths
        return (path.name if path.is_dir() else path.stem), _file_version(path)
    versions = [_file_version(p) for p in paths]
    name = "ensemble:" + "+".join(f"{p.parent.name}/{p.name if p.is_dir() else p.stem}" for p in paths)
    digest = hashlib.sha256(" ".join(versions).encode()).hexdigest()[:16]
    return name, (f"sha256:{digest}" if all(versions) else "")


def load_map_teacher(path, label_kind="prob", output="", input_size=(192, 256)):
    """A saliency teacher from a .keras / .tflite file, a SavedModel directory, a folder of maps, or several
    model teachers separated by commas (an EnsembleTeacher)."""
    sources = teacher_sources(path)
    if len(sources) > 1:
        folders = [s for s in sources if pathlib.Path(s).is_dir() and not (pathlib.Path(s) / "saved_model.pb").is_file()]
        if folders:
            raise ValueError(f"{', '.join(folders)}: a folder of maps cannot be an ensemble member (only models)")
        return EnsembleTeacher([load_map_teacher(s, label_kind, output, input_size) for s in sources], sources)
    source = os.fspath(path)
    file = pathlib.Path(source)
    if file.is_dir():
        if (file / "saved_model.pb").is_file():
            return SavedModelTeacher(source, label_kind, output, input_size)
        return MapFolderTeacher(file)
    if not file.is_file():
        raise ValueError(f"{source}: teacher not found")
    if file.suffix.lower() == ".keras":
        return KerasTeacher(source, label_kind, output, input_size)
    if file.suffix.lower() == ".tflite":
        return LiteRTTeacher(source, label_kind, output)
    raise ValueError(f"{source}: a teacher must be a .keras or .tflite file, a SavedModel directory or a folder "
                     "of maps")


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

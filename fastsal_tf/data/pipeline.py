"""The tf.data input pipeline for training and evaluation.

build_pipeline(examples, config) yields dicts (batched when config.batch_size is set). With the network
frame (H, W) = config.size:

  image          float32 (H, W, 3)  RGB 0–255, the model's input
  density        float32 (H, W, 1)  fixation density summing to 1: target of the `prob` output (KLD, CC)
  density_max1   float32 (H, W, 1)  the same density scaled to max 1: BCE target of the `map` output
  fixation_map   float32 (H, W, 1)  1 at fixated pixels (NSS); all zeros when the density comes from maps
  num_fixations  int32   ()         fixations inside the (cropped) frame, counted before duplicates merge
  teacher        float32 (H, W, 1)  teacher label (with pseudo_labels): "map" in [0, 1], "prob" sums to 1
  id             string  ()
  original_hw    int32   (2,)       stored (height, width) of the image

The density keys and fixation_map exist when the examples have labels; teacher only with pseudo_labels.
With config.fit_targets, e.g. {"prob": "density", "map": "density_max1"}, elements are
(image, {output name: element[key]}) for model.fit.

Densities are computed at network resolution from the fixations (sigma given in pixels of the stored image,
or in degrees with pixels per degree, scaled to the network frame per axis), or taken from the dataset's
continuous maps (density_from="map"). Letterboxed padding is zero in every map. JPEGs are decoded with
libjpeg's DCT downscaling (1/2, 1/4, 1/8) when the image size allows it exactly and the result is still at
least the network size; the geometry stays exact.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from fastsal_tf.data import augment as aug
from fastsal_tf.data.density import content_mask, fixations_and_density, normalise_max, normalise_sum, transform_points
from fastsal_tf.data.example import SaliencyExample
from fastsal_tf.data.geometry import check_policy, place, placement_tf
from fastsal_tf.data.pseudo_labels import read_pseudo_labels
from fastsal_tf.fixations import sigma_from_degrees

DENSITY_SOURCES = ("auto", "fixations", "map")
_JPEG_RATIOS = (2, 4, 8)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How build_pipeline turns examples into batches.

    size: network (height, width). resize: "stretch" (the paper) or "letterbox".
    sigma_px: density Gaussian sigma in pixels of the stored image; or sigma_deg with pixels_per_degree.
    density_from: "fixations", "map" (the dataset's continuous maps) or "auto" (fixations when every
        example has them, else maps when every example has one).
    augment: an Augmentation for training, or None (evaluation: deterministic geometry).
    batch_size: None for unbatched elements. shuffle_buffer: None = the whole dataset.
    cache: False, True (memory) or a file path; caches decoded images (with augment) or finished
        examples (without), so later epochs skip decoding.
    cache_size: with augment and cache, (H, W) at which the decoded images (and map files) are kept instead
        of their stored size: stretched to it for "stretch", fitted inside it keeping the aspect for
        "letterbox" (JPEGs decoded with libjpeg downscaling where exact). Points and the density sigma follow
        the image, so targets match those of the full-size path up to resampling. Crops then come from the
        smaller image: choose it at least size / sqrt(smallest crop area) (e.g. 1.25 × size for 0.7).
    seed: seeds shuffling and augmentation (None: random). deterministic: keep element order under
        parallel processing (reproducible runs).
    fit_targets: {model output name: element key} to emit (image, targets) tuples for model.fit.
    """

    size: tuple[int, int] = (192, 256)
    resize: str = "stretch"
    sigma_px: float | None = None
    sigma_deg: float | None = None
    pixels_per_degree: float | None = None
    density_from: str = "auto"
    augment: aug.Augmentation | None = None
    batch_size: int | None = 8
    drop_remainder: bool = False
    shuffle: bool = False
    shuffle_buffer: int | None = None
    cache: bool | str = False
    cache_size: tuple[int, int] | None = None
    seed: int | None = None
    deterministic: bool = True
    fit_targets: Mapping[str, str] | None = None

    def __post_init__(self):
        check_policy(self.resize)
        if self.density_from not in DENSITY_SOURCES:
            raise ValueError(f"density_from must be one of {DENSITY_SOURCES}, got {self.density_from!r}")
        if (self.sigma_px is not None) == (self.sigma_deg is not None):
            if self.sigma_px is not None:
                raise ValueError("give sigma_px or sigma_deg (with pixels_per_degree), not both")
        elif self.sigma_deg is not None and self.pixels_per_degree is None:
            raise ValueError("sigma_deg needs pixels_per_degree")
        if self.source_sigma_px is not None and not self.source_sigma_px > 0:
            raise ValueError("the density sigma must be > 0")
        if self.cache_size is not None and (len(self.cache_size) != 2 or min(self.cache_size) < 1):
            raise ValueError(f"cache_size must be (height, width) >= 1, got {self.cache_size}")

    @property
    def source_sigma_px(self) -> float | None:
        """Density sigma in pixels of the stored image, or None."""
        if self.sigma_deg is not None:
            return sigma_from_degrees(self.sigma_deg, self.pixels_per_degree)
        return self.sigma_px


@dataclasses.dataclass(frozen=True)
class _Labels:
    """What the records carry (fixed per dataset): points, a map file, teacher labels; the density source."""

    points: bool
    gt_map: bool
    teacher: bool
    density: str | None


def _resolve_labels(examples: Sequence[SaliencyExample], config: PipelineConfig, teacher: bool) -> _Labels:
    points = bool(examples) and all(e.fixations is not None for e in examples)
    gt_map = bool(examples) and all(e.map_path is not None for e in examples)
    density = config.density_from
    if density == "auto":
        density = "fixations" if points else "map" if gt_map else None
        if density is None and any(e.fixations is not None or e.map_path is not None for e in examples):
            raise ValueError("some examples have labels and some not; choose density_from explicitly")
    elif density == "fixations" and not points:
        raise ValueError("density_from='fixations' but not every example has fixations")
    elif density == "map" and not gt_map:
        raise ValueError("density_from='map' but not every example has a map file")
    if density == "fixations" and config.source_sigma_px is None:
        raise ValueError("densities from fixations need sigma_px, or sigma_deg with pixels_per_degree")
    return _Labels(points, gt_map and density == "map", teacher, density)


def _example_columns(examples: Sequence[SaliencyExample], labels: _Labels) -> dict:
    """Per-example columns for Dataset.from_tensor_slices (points as a ragged (n, None, 2) tensor)."""
    columns = {
        "id": np.array([e.id for e in examples], dtype=object),
        "path": np.array([str(e.image_path) for e in examples], dtype=object),
        "hw": np.array([[e.height, e.width] for e in examples], dtype=np.int32).reshape(-1, 2),
    }
    if labels.points:
        lengths = [len(e.fixations) for e in examples]
        values = np.concatenate([e.fixations for e in examples]).astype(np.float32).reshape(-1, 2)
        columns["points"] = tf.RaggedTensor.from_row_lengths(values, lengths)
    if labels.gt_map:
        columns["map_path"] = np.array([str(e.map_path) for e in examples], dtype=object)
    return columns


def _example_records(examples: Sequence[SaliencyExample], labels: _Labels) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(_example_columns(examples, labels))


def _pseudo_label_records(files: Sequence[str], examples: Sequence[SaliencyExample], labels: _Labels,
                          deterministic: bool) -> tf.data.Dataset:
    """Records from pseudo-label shards; ground truth of the same id joined from examples when given."""
    columns = _example_columns(examples, labels) if examples else {}
    table = None
    if examples:
        ids = [e.id for e in examples]
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.range(len(ids), dtype=tf.int64)), -1)

    def to_record(parsed):
        record = {"id": parsed["id"], "path": parsed["id"], "image_bytes": parsed["image"],
                  "hw": tf.stack([parsed["height"], parsed["width"]]), "teacher": parsed["label"],
                  "kind": parsed["kind"]}
        if table is not None:
            index = table.lookup(parsed["id"])
            tf.debugging.Assert(index >= 0, ["pseudo-label id without a ground-truth example:", parsed["id"]])
            if "points" in columns:
                record["points"] = columns["points"][index]
            if "map_path" in columns:
                record["map_path"] = tf.gather(tf.constant(columns["map_path"]), index)
        return record

    return read_pseudo_labels(files, deterministic).map(to_record, num_parallel_calls=tf.data.AUTOTUNE,
                                                        deterministic=deterministic)


def _jpeg_ratio_index(image_bytes, src_hw, box, content_hw) -> tf.Tensor:
    """0 for a full decode, k for libjpeg downscaling by 2**k: only for JPEGs whose size it divides and
    whose crop stays at least content-sized."""
    is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 2), b"\xff\xd8")
    index = tf.constant(0)
    for k, ratio in enumerate(_JPEG_RATIOS, start=1):
        fits = (is_jpeg & tf.equal(src_hw[0] % ratio, 0) & tf.equal(src_hw[1] % ratio, 0)
                & (box[2] // ratio >= content_hw[0]) & (box[3] // ratio >= content_hw[1]))
        index = tf.where(fits, k, index)
    return index


def _decode(image_bytes, ratio_index) -> tf.Tensor:
    """uint8 (h, w, 3) RGB; ratio_index from _jpeg_ratio_index."""
    branches = [lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False)]
    branches += [lambda r=r: tf.io.decode_jpeg(image_bytes, channels=3, ratio=r) for r in _JPEG_RATIOS]
    return tf.ensure_shape(tf.switch_case(ratio_index, branches), (None, None, 3))


def _decode_map(path) -> tf.Tensor:
    """float32 (H, W, 1) in [0, 1] from a grayscale (8/16-bit) or colour map file."""
    data = tf.io.read_file(path)
    decoded = tf.io.decode_image(data, channels=1, expand_animations=False)
    return tf.ensure_shape(tf.cast(decoded, tf.float32) / 255.0, (None, None, 1))


def _image_bytes(record: dict) -> tf.Tensor:
    return record["image_bytes"] if "image_bytes" in record else tf.io.read_file(record["path"])


def _decode_full(record: dict) -> dict:
    """Record with the image (and map) decoded at full size, for caching before random crops."""
    record = dict(record)
    record["image"] = _decode(_image_bytes(record), tf.constant(0))
    record.pop("image_bytes", None)
    if "map_path" in record:
        record["map"] = _decode_map(record.pop("map_path"))
    return record


def _resized_hw(hw, target_hw, policy) -> tf.Tensor:
    """int32 (2,): target_hw for "stretch"; hw scaled to fit inside target_hw, aspect kept, for "letterbox"."""
    target = tf.constant(target_hw, tf.int32)
    if policy == "stretch":
        return target
    scale = tf.reduce_min(tf.cast(target, tf.float32) / tf.cast(hw, tf.float32))
    return tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float32) * scale), tf.int32), 1)


def _decode_resized(record: dict, target_hw: tuple[int, int], policy: str) -> dict:
    """Record with the image (uint8) and map decoded and resized (bilinear, antialiased) to _resized_hw;
    points moved into the new frame, "hw" the new size and "scale_yx" (new / stored size per axis)."""
    record = dict(record)
    hw = record["hw"]
    new_hw = _resized_hw(hw, target_hw, policy)
    data = _image_bytes(record)
    index = _jpeg_ratio_index(data, hw, (0, 0, hw[0], hw[1]), new_hw)
    image = tf.image.resize(_decode(data, index), new_hw, method="bilinear", antialias=True)
    record["image"] = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    record.pop("image_bytes", None)
    scale_yx = tf.cast(new_hw, tf.float32) / tf.cast(hw, tf.float32)
    if "points" in record:
        scale_xy = tf.reverse(scale_yx, [0])[None, :]
        record["points"] = (record["points"] + 0.5) * scale_xy - 0.5
    if "map_path" in record:
        record["map"] = tf.image.resize(_decode_map(record.pop("map_path")), new_hw, method="bilinear", antialias=True)
    record["hw"] = new_hw
    record["scale_yx"] = scale_yx
    return record


def _crop(x, box) -> tf.Tensor:
    return x[box[0]:box[0] + box[2], box[1]:box[1] + box[3]]


def _flip(x, flip) -> tf.Tensor:
    return tf.cond(flip, lambda: tf.reverse(x, axis=[1]), lambda: x)


class _Processor:
    """Decodes, crops, resizes/places, flips and jitters one record and computes its targets."""

    def __init__(self, config: PipelineConfig, labels: _Labels):
        self.config = config
        self.labels = labels

    def _box(self, record, box_seed, flip_seed):
        """Source crop (y0, x0, h, w) and flip: the whole image unflipped without augmentation."""
        hw = record["hw"]
        if self.config.augment is None:
            return (tf.constant(0), tf.constant(0), hw[0], hw[1]), tf.constant(False)
        height, width = self.config.size
        aspect = (width / height if self.config.resize == "stretch"
                  else tf.cast(hw[1], tf.float32) / tf.cast(hw[0], tf.float32))
        return (aug.sample_box(box_seed, hw[0], hw[1], aspect, self.config.augment),
                aug.sample_flip(flip_seed, self.config.augment))

    def _image(self, record, box):
        """(cropped float32 image, final box, placement) — JPEG downscaled at decode where exact."""
        size, policy = self.config.size, self.config.resize
        placement = placement_tf(box[2], box[3], size, policy)
        if "image" in record:
            return tf.cast(_crop(record["image"], box), tf.float32), box, placement
        data = _image_bytes(record)
        index = _jpeg_ratio_index(data, record["hw"], box, placement[:2])
        ratio = tf.bitwise.left_shift(1, index)
        box = tuple(v // ratio * ratio for v in box)
        placement = placement_tf(box[2], box[3], size, policy)
        image = _decode(data, index)
        tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(image)[:2], (record["hw"] + ratio - 1) // ratio)),
                            ["decoded image size differs from the size read:", record["path"]])
        return tf.cast(_crop(image, tuple(v // ratio for v in box)), tf.float32), box, placement

    def _place_map(self, x, box, placement, flip):
        """A full-image (h, w, 1) map cropped, placed and flipped like the image."""
        return _flip(place(_crop(x, box), placement[:2], placement[2:], self.config.size), flip)

    def __call__(self, record: dict, seed: tf.Tensor | None = None) -> dict:
        config, labels = self.config, self.labels
        size = config.size
        box_seed, flip_seed, jitter_seed = (None,) * 3 if seed is None else tf.unstack(
            tf.random.experimental.stateless_split(seed, 3))
        box, flip = self._box(record, box_seed, flip_seed)
        image, box, placement = self._image(record, box)
        content_hw, offset_yx = placement[:2], placement[2:]
        image = _flip(place(image, content_hw, offset_yx, size), flip)
        if config.augment is not None:
            mask = content_mask(size, content_hw, offset_yx, flip)[..., None]
            image = aug.jitter(image, jitter_seed, config.augment) * mask
        out = {"image": image, "id": record["id"], "original_hw": record["hw"]}
        if labels.teacher:
            teacher = record["teacher"]
            teacher = tf.cond(tf.reduce_all(tf.equal(tf.shape(teacher)[:2], record["hw"])), lambda: teacher,
                              lambda: tf.image.resize(teacher, record["hw"], method="bilinear", antialias=True))
            teacher = self._place_map(teacher, box, placement, flip)
            out["teacher"] = tf.cond(tf.equal(record["kind"], "prob"), lambda: normalise_sum(teacher), lambda: teacher)
        if labels.density is None:
            return out
        fixation_map = tf.zeros(size)
        out["num_fixations"] = tf.constant(0)
        if labels.points:
            points, inside = transform_points(record["points"], box, content_hw, offset_yx)
            sigma = config.source_sigma_px or 1.0  # with densities from maps only the binary map is used
            scale_yx = record["scale_yx"] if "scale_yx" in record else tf.ones(2)  # stored → cached frame
            sigma_yx = (sigma * scale_yx[0] * tf.cast(content_hw[0], tf.float32) / tf.cast(box[2], tf.float32),
                        sigma * scale_yx[1] * tf.cast(content_hw[1], tf.float32) / tf.cast(box[3], tf.float32))
            fixation_map, density = fixations_and_density(points, inside, content_hw, offset_yx, size, sigma_yx, flip)
            out["num_fixations"] = tf.reduce_sum(tf.cast(inside, tf.int32))
        if labels.density == "map":
            gt_map = record["map"] if "map" in record else _decode_map(record["map_path"])
            density = self._place_map(gt_map, box, placement, flip)[..., 0]
        out["fixation_map"] = fixation_map[..., None]
        out["density"] = normalise_sum(density)[..., None]
        out["density_max1"] = normalise_max(density)[..., None]
        return out


def _select_fit(element: dict, fit_targets: Mapping[str, str]):
    return element["image"], {name: element[key] for name, key in fit_targets.items()}


def build_pipeline(examples: Sequence[SaliencyExample] | None, config: PipelineConfig, *,
                   pseudo_labels: Sequence[str] | None = None) -> tf.data.Dataset:
    """The input pipeline (element keys in the module docstring).

    examples: from a reader / read_dataset (their files were validated there). pseudo_labels: shard
    files (see pseudo_labels.list_shards): then images come from the shards with their teacher labels,
    and examples (optional) give the ground truth of the same ids.
    """
    examples = list(examples or [])
    if not examples and not pseudo_labels:
        raise ValueError("build_pipeline needs examples or pseudo-label files")
    labels = _resolve_labels(examples, config, teacher=bool(pseudo_labels))
    if pseudo_labels:
        records = _pseudo_label_records(pseudo_labels, examples, labels, config.deterministic)
        if config.shuffle and config.shuffle_buffer is None:
            raise ValueError("shuffling pseudo-label shards needs a shuffle_buffer")
    else:
        records = _example_records(examples, labels)
    process = _Processor(config, labels)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=config.deterministic)
    buffer = config.shuffle_buffer or max(len(examples), 1)

    def shuffle(ds):
        return ds.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True) if config.shuffle else ds

    def cache(ds):
        return ds.cache("" if config.cache is True else config.cache)

    if config.augment is None:
        if config.cache:
            ds = shuffle(cache(records.map(process, **parallel)))
        else:
            ds = shuffle(records).map(process, **parallel)
    else:
        if config.cache_size is not None:
            decode = functools.partial(_decode_resized, target_hw=tuple(config.cache_size), policy=config.resize)
        else:
            decode = _decode_full
        ds = shuffle(cache(records.map(decode, **parallel))) if config.cache else shuffle(records)
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(process, **parallel)
    if config.batch_size:
        ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder, **parallel)
    if config.fit_targets:
        ds = ds.map(lambda e: _select_fit(e, config.fit_targets))
    options = tf.data.Options()
    options.deterministic = config.deterministic
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

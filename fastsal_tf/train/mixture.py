"""Training mixtures: several labelled sets and pseudo-labelled photos in one seeded tf.data pipeline.

A source is written `name[:split][@root]`: a dataset of the registry (fastsal_tf.data.registry) with its
split, or `pseudo@<folder of pseudo-label shards>` (fastsal_tf.data.pseudo_labels). Each source builds its
target its own way, at the network size:
  fixation points → the density of the points blurred with the dataset's sigma (DatasetSpec.sigma_px);
  continuous maps (e.g. hamburg_cv2) → the map resized and normalised to sum 1;
  pseudo-labels → the teacher's map normalised to sum 1.
Every element is (image, {"density": (H, W, 1) summing to 1, "fixation_map": (H, W, 1) binary, all zeros
where a source has no points}); an NSS term therefore only counts images with points. With images_only
(hint pretraining) the labels are dropped, any set is a source (unlabelled photo folders too), and every
element is the image alone.

Each source is decoded once and cached at `cache_size` (the network size plus the crop margin) in a file
under the run's cache folder, shuffled and augmented on its own, repeated, and the sources are interleaved
by `tf.data.Dataset.sample_from_datasets` with the normalised sampling weights (default: proportional to
the number of images, i.e. every image equally likely) and a seed; the result is batched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib
from collections.abc import Mapping, Sequence

import tensorflow as tf

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.pseudo_labels import check_shards, list_shards
from fastsal_tf.data.registry import get_reader, read_dataset

PSEUDO = "pseudo"
DEFAULT_SIGMA_PX = 24.0


@dataclasses.dataclass(frozen=True)
class Source:
    """One member of a mixture: a registry dataset (name, split, root) or pseudo-label shards (name
    "pseudo", root = the shard folder). weight: sampling weight, None = proportional to its size."""

    name: str
    split: str | None
    root: str
    weight: float | None = None

    @property
    def label(self) -> str:
        """How the source is written in flags and messages, e.g. "osie:train"."""
        return self.name + (f":{self.split}" if self.split else "")


def parse_sources(spec: str, weights: str = "", *, roots: Mapping[str, str] | None = None,
                  extra_dir: str = "") -> list[Source]:
    """Sources from "name[:split][@root],..." and optional comma-separated weights (one per source).

    A source's root is its `@root`, else roots[name] (e.g. the --data_dir of --dataset), else
    extra_dir/name (the folder layout of shared/tools/extra_data.py). Raises ValueError naming the source
    for an unknown dataset, a missing root, a duplicated source, or a weight that is not a finite
    number >= 0, and when the weights are all zero or not one per source.
    """
    roots = dict(roots or {})
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError("no training sources given")
    values: list[float | None] = [None] * len(items)
    if weights.strip():
        texts = [w.strip() for w in weights.split(",")]
        if len(texts) != len(items):
            raise ValueError(f"{len(texts)} mixture weights for {len(items)} sources ({', '.join(items)})")
        values = []
        for item, text in zip(items, texts):
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"source {item}: mixture weight {text!r} is not a number") from None
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"source {item}: mixture weight must be a finite number >= 0, got {text}")
            values.append(value)
        if not any(values):
            raise ValueError("mixture weights are all zero")
    sources = []
    for item, weight in zip(items, values):
        head, _, root = item.partition("@")
        name, _, split = head.partition(":")
        if name != PSEUDO:
            try:
                get_reader(name)
            except ValueError as error:
                raise ValueError(f"source {item}: {error}") from None
        elif split:
            raise ValueError(f"source {item}: pseudo-label shards have no split")
        if not root:
            root = roots.get(name) or (str(pathlib.Path(extra_dir) / name) if extra_dir and name != PSEUDO else "")
        if not root:
            raise ValueError(f"source {item}: no folder; write {head}@FOLDER" +
                             ("" if name == PSEUDO else " or give the folder holding the extra sets"))
        sources.append(Source(name, split or None, root, weight))
    labels = [(s.label, s.root) for s in sources]
    for index, key in enumerate(labels):
        if key in labels[:index]:
            raise ValueError(f"source {items[index]} is given twice")
    return sources


@dataclasses.dataclass(frozen=True)
class _Member:
    source: Source
    dataset: tf.data.Dataset
    size: int


def _labelled_member(source: Source, config: PipelineConfig, sigma_px: float | None, split_file: str,
                     limit: int, images_only: bool) -> _Member:
    spec = get_reader(source.name)
    options = {"split_file": split_file} if split_file else {}
    try:
        examples = list(read_dataset(source.name, source.root, source.split, **options))[: limit or None]
    except (DatasetError, OSError) as error:
        raise ValueError(f"source {source.label}: {error}") from error
    if not examples:
        raise ValueError(f"source {source.label} under {source.root} has no examples")
    if images_only:
        examples = [dataclasses.replace(e, fixations=None, map_path=None) for e in examples]
        config = dataclasses.replace(config, sigma_px=None, sigma_deg=None, density_from="auto")
        return _Member(source, build_pipeline(examples, config).map(lambda e: e["image"]), len(examples))
    points = all(e.fixations is not None for e in examples)
    if not points and not all(e.map_path is not None for e in examples):
        raise ValueError(f"source {source.label}: needs fixations or maps for every image (an unlabelled set "
                         "enters a mixture through its pseudo-labels)")
    sigma = sigma_px or spec.sigma_px or DEFAULT_SIGMA_PX
    config = dataclasses.replace(config, sigma_px=sigma, sigma_deg=None, density_from="fixations" if points else "map")
    elements = build_pipeline(examples, config)
    return _Member(source, elements.map(lambda e: (e["image"], {"density": e["density"],
                                                                 "fixation_map": e["fixation_map"]})),
                   len(examples))


def _pseudo_member(source: Source, config: PipelineConfig, limit: int, images_only: bool) -> _Member:
    try:
        shards = [str(p) for p in list_shards(source.root)]
        check_shards(shards)
    except DatasetError as error:
        raise ValueError(f"source {source.label}: {error}") from error
    count = sum(1 for _ in tf.data.TFRecordDataset(shards))
    if limit:
        count = min(count, limit)
    if not count:
        raise ValueError(f"source {source.label}: the shards in {source.root} hold no records")
    elements = build_pipeline(None, dataclasses.replace(config, shuffle_buffer=config.shuffle_buffer or 1000),
                              pseudo_labels=shards)
    if limit:
        elements = elements.take(limit)

    def as_targets(element):
        teacher = element["teacher"]
        density = teacher / (tf.reduce_sum(teacher) + 1e-12)
        return element["image"], {"density": density, "fixation_map": tf.zeros_like(teacher)}

    return _Member(source, elements.map((lambda e: e["image"]) if images_only else as_targets), count)


def mixture_weights(members: Sequence[_Member]) -> list[float]:
    """Normalised sampling probabilities: the given weights, or sizes where every weight is None."""
    if all(m.source.weight is None for m in members):
        raw = [float(m.size) for m in members]
    elif any(m.source.weight is None for m in members):
        raise ValueError("give a mixture weight for every source or for none")
    else:
        raw = [float(m.source.weight) for m in members]
    total = sum(raw)
    return [w / total for w in raw]


def _cache_path(cache_dir: pathlib.Path, index: int, source: Source, config: PipelineConfig, limit: int) -> str:
    """A cache file prefix that changes with everything the cached records depend on, so a cache written
    with other settings is never read back."""
    key = repr((source.name, source.split, str(pathlib.Path(source.root).resolve()), config.cache_size, config.resize,
                limit)).encode()
    return str(cache_dir / f"{index:02d}_{source.name}_{hashlib.sha256(key).hexdigest()[:12]}")


def clear_partial_caches(cache_dir: str | pathlib.Path) -> None:
    """Removes what a killed run leaves of tf.data cache files being written (lock and temporary files);
    complete caches stay and are reused."""
    for path in pathlib.Path(cache_dir).glob("*"):
        if path.name.endswith(".lockfile") or ".tempstate" in path.name:
            path.unlink(missing_ok=True)


def build_mixture(sources: Sequence[Source], config: PipelineConfig, *, cache_dir: str | pathlib.Path,
                  sigma_px: float | None = None, split_files: Mapping[str, str] | None = None, limit: int = 0,
                  images_only: bool = False,
                  ) -> tuple[tf.data.Dataset, int, list[tuple[Source, int, float]]]:
    """(batched (image, targets) dataset that repeats forever, images in one pass over all sources,
    [(source, its image count, its sampling probability)]).

    config: the training PipelineConfig (size, augment, batch_size, seed, cache_size...); each source gets it
    unbatched, with its own sigma / density source and a cache file in cache_dir. sigma_px overrides every
    point source's sigma. split_files: {dataset name: split JSON} for sources whose fixed split is not the
    packaged one. limit: use only the first N images of each source (smoke tests). images_only:
    batches of images without targets (hint pretraining). Every source is
    read and checked before the dataset is returned, so bad sources fail before any training starts.
    """
    cache_dir = pathlib.Path(cache_dir)
    members = []
    for index, source in enumerate(sources):
        cached = config.cache and not (limit and source.name == PSEUDO)  # a cut-off pass never completes a cache
        member_config = dataclasses.replace(
            config, batch_size=None, shuffle=True, drop_remainder=False, fit_targets=None,
            seed=None if config.seed is None else config.seed + index,
            cache=_cache_path(cache_dir, index, source, config, limit) if cached else False)
        if source.name == PSEUDO:
            members.append(_pseudo_member(source, member_config, limit, images_only))
        else:
            split_file = (split_files or {}).get(source.name, "")
            members.append(_labelled_member(source, member_config, sigma_px, split_file, limit, images_only))
    probabilities = mixture_weights(members)
    if config.cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        clear_partial_caches(cache_dir)
    kept = [(m, p) for m, p in zip(members, probabilities) if p > 0]
    if len(kept) == 1:
        mixed = kept[0][0].dataset.repeat()
    else:
        mixed = tf.data.Dataset.sample_from_datasets([m.dataset.repeat() for m, _ in kept], [p for _, p in kept],
                                                     seed=config.seed)
    mixed = mixed.batch(config.batch_size or 1, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    summary = [(m.source, m.size, p) for m, p in zip(members, probabilities)]
    return mixed, sum(m.size for m, p in kept), summary

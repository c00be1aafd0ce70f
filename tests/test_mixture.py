"""Training mixtures (fastsal_tf.train.mixture) on the fixtures: source parsing, per-source targets,
sampling weights, determinism, errors before training, and finetune(train=...) end to end with resume."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf.data.augment import Augmentation
from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.pipeline import PipelineConfig
from fastsal_tf.data.pseudo_labels import check_shards, encode_pseudo_label, shard_path
from fastsal_tf.train.finetune import FinetuneConfig, finetune
from fastsal_tf.train.mixture import Source, build_mixture, parse_sources

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
OSIE = DATASETS / "osie"
SPLIT = str(OSIE / "osie_split.json")
GEOMETRY = Augmentation(flip=True, crop_scale=(0.7, 1.0), brightness=0, contrast=0, saturation=0)


def training_config(**overrides):
    settings = dict(size=(24, 32), augment=GEOMETRY, batch_size=4, seed=3, cache=False, shuffle=True)
    settings.update(overrides)
    return PipelineConfig(**settings)


def mixture(spec, weights="", tmp_path=None, **config):
    sources = parse_sources(spec, weights, roots={"osie": str(OSIE)}, extra_dir=str(DATASETS))
    return build_mixture(sources, training_config(**config), cache_dir=tmp_path or "/nonexistent",
                         split_files={"osie": SPLIT})


def test_parse_sources_roots_splits_and_weights():
    sources = parse_sources("osie:train, hamburg_cv2:validation,rss2015@/data/rss,pseudo@/labels", "1,2,0.5,0",
                            roots={"osie": "/osie"}, extra_dir="/extra")
    assert sources == [Source("osie", "train", "/osie", 1.0),
                       Source("hamburg_cv2", "validation", "/extra/hamburg_cv2", 2.0),
                       Source("rss2015", None, "/data/rss", 0.5), Source("pseudo", None, "/labels", 0.0)]
    assert [s.label for s in sources] == ["osie:train", "hamburg_cv2:validation", "rss2015", "pseudo"]
    assert parse_sources("osie:train", roots={"osie": "/o"})[0].weight is None


@pytest.mark.parametrize("spec, weights, message", [
    ("", "", "no training sources"),
    ("nope:train@/x", "", "unknown dataset 'nope'"),
    ("osie:train,rss2015@/r", "1", "1 mixture weights for 2 sources"),
    ("osie:train,rss2015@/r", "1,-1", "source rss2015@/r: mixture weight must be a finite number >= 0, got -1"),
    ("osie:train,rss2015@/r", "1,nan", "source rss2015@/r: mixture weight must be a finite number >= 0"),
    ("osie:train,rss2015@/r", "1,x", "source rss2015@/r: mixture weight 'x' is not a number"),
    ("osie:train,rss2015@/r", "0,0", "mixture weights are all zero"),
    ("osie:train,rss2015", "", "source rss2015: no folder"),
    ("pseudo", "", "source pseudo: no folder; write pseudo@FOLDER"),
    ("pseudo:train@/p", "", "pseudo-label shards have no split"),
    ("osie:train,osie:train", "", "source osie:train is given twice"),
])
def test_parse_sources_errors_name_the_source(spec, weights, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sources(spec, weights, roots={"osie": "/o"})


def sources_of(batches):
    """1 for an element with fixations (osie, rss2015), 0 for a map-only one (hamburg_cv2)."""
    return np.concatenate([(targets["fixation_map"].reshape(len(images), -1).max(axis=1) > 0).astype(int)
                           for images, targets in batches])


def test_each_source_builds_its_own_target_and_weights_pick_sources():
    dataset, images, summary = mixture("osie:train,hamburg_cv2:all", "1,0")
    assert images == 2
    assert [(s.label, n, p) for s, n, p in summary] == [("osie:train", 2, 1.0), ("hamburg_cv2:all", 3, 0.0)]
    batches = list(dataset.take(3).as_numpy_iterator())
    assert sources_of(batches).tolist() == [1] * 12
    for images_, targets in batches:
        assert images_.shape == (4, 24, 32, 3) and targets["density"].shape == (4, 24, 32, 1)
        np.testing.assert_allclose(targets["density"].sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    only_maps = list(mixture("osie:train,hamburg_cv2:all", "0,1")[0].take(3).as_numpy_iterator())
    assert sources_of(only_maps).tolist() == [0] * 12
    for _, targets in only_maps:
        np.testing.assert_allclose(targets["density"].sum(axis=(1, 2, 3)), 1.0, atol=1e-5)


def test_sampling_follows_weights_and_is_deterministic_with_a_seed():
    dataset, images, summary = mixture("osie:train,hamburg_cv2:all", "3,1")
    assert [p for _, _, p in summary] == [0.75, 0.25]
    first = list(dataset.take(250).as_numpy_iterator())
    share = sources_of(first).mean()
    assert abs(share - 0.75) < 0.05  # 1000 draws: binomial sd 0.014
    again = list(mixture("osie:train,hamburg_cv2:all", "3,1")[0].take(250).as_numpy_iterator())
    for (a_images, a_targets), (b_images, b_targets) in zip(first, again):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_targets["density"], b_targets["density"])
    other = list(mixture("osie:train,hamburg_cv2:all", "3,1", seed=4)[0].take(5).as_numpy_iterator())
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    _, _, by_size = mixture("osie:train,hamburg_cv2:all,rss2015")
    assert [round(p, 4) for _, _, p in by_size] == [round(n / 7, 4) for n in (2, 3, 2)]


def test_cached_mixture_reuses_complete_caches_and_clears_partial_ones(tmp_path):
    dataset, _, _ = mixture("osie:train,rss2015", "1,1", tmp_path=tmp_path, cache=True, cache_size=(30, 40))
    first = list(dataset.take(4).as_numpy_iterator())
    assert len(list(tmp_path.glob("*.index"))) == 2  # both sources completed a pass, so both caches exist
    (tmp_path / "00_osie_x_0.lockfile").write_text("stale")
    (tmp_path / "00_osie_x_0.data-00000-of-00001.tempstate123").write_text("stale")
    again = list(mixture("osie:train,rss2015", "1,1", tmp_path=tmp_path, cache=True,
                         cache_size=(30, 40))[0].take(4).as_numpy_iterator())
    assert not list(tmp_path.glob("*lockfile")) and not list(tmp_path.glob("*tempstate*"))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[1]["density"], b[1]["density"])


def write_shard(folder, index, count, teacher="t", version="1", size=(6, 8), names=("1010", "1024")):
    folder.mkdir(exist_ok=True)
    label = np.ones(size) / np.prod(size)
    with tf.io.TFRecordWriter(str(shard_path(folder, index, count))) as writer:
        for name in names:
            data = (OSIE / "data" / "stimuli" / f"{name}.jpg").read_bytes()
            writer.write(encode_pseudo_label(data, name, label, "prob", teacher, version))


def test_pseudo_labelled_source_uses_the_teacher_map(tmp_path):
    write_shard(tmp_path / "labels", 0, 1)
    dataset, images, _ = mixture(f"osie:train,pseudo@{tmp_path / 'labels'}", "0,1")
    assert images == 2  # the pass counts the sources sampled (weight > 0)
    for _, targets in dataset.take(2).as_numpy_iterator():
        assert targets["fixation_map"].max() == 0
        np.testing.assert_allclose(targets["density"].sum(axis=(1, 2, 3)), 1.0, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (dict(teacher="other"), "teacher is 'other' but pseudo_labels-00000-of-00002.tfrecord has 't'"),
    (dict(version="2"), "teacher_version is '2'"),
    (dict(size=(12, 16)), r"label_hw is \(12, 16\)"),
])
def test_shards_from_another_teacher_or_size_are_refused(tmp_path, change, message):
    folder = tmp_path / "labels"
    write_shard(folder, 0, 2)
    write_shard(folder, 1, 2, **change)
    with pytest.raises(DatasetError, match=message):
        check_shards(sorted(folder.glob("*.tfrecord")))
    with pytest.raises(ValueError, match=f"source pseudo: .*00001-of-00002.tfrecord: {message}"):
        mixture(f"osie:train,pseudo@{folder}")


def test_bad_sources_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="source osie:train: .*not found"):
        build_mixture([Source("osie", "train", str(tmp_path / "none"))], training_config(), cache_dir=tmp_path,
                      split_files={"osie": SPLIT})
    with pytest.raises(ValueError, match="source photos: needs fixations or maps"):
        build_mixture([Source("photos", None, str(DATASETS / "osie" / "data" / "stimuli"))], training_config(),
                      cache_dir=tmp_path)
    with pytest.raises(ValueError, match="give a mixture weight for every source or for none"):
        build_mixture([Source("osie", "train", str(OSIE), 1.0), Source("rss2015", None, str(DATASETS / "rss2015"))],
                      training_config(), cache_dir=tmp_path,
                      split_files={"osie": SPLIT})
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="source hamburg_cv2:train"):
        finetune(FinetuneConfig(out_dir=str(run), data_dir=str(OSIE), split_file=SPLIT, size=(32, 32), init="none",
                                train=f"osie:train,hamburg_cv2:train@{tmp_path / 'missing'}", verbose=0))
    assert not run.exists()  # nothing written


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current, self.begun = epoch, 0, []

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        self.begun.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_finetune_on_a_mixture_runs_its_steps_and_resumes(tmp_path):
    config = FinetuneConfig(out_dir=str(tmp_path / "run"), data_dir=str(OSIE), split_file=SPLIT, size=(32, 32),
                            init="none", epochs=3, batch_size=2, verbose=0, nss_weight=0.1, extra_dir=str(DATASETS),
                            train="osie:train,hamburg_cv2:all,rss2015", steps_per_epoch=3)
    with pytest.raises(KeyboardInterrupt):
        finetune(config, extra_callbacks=[Interrupt(epoch=1)])
    recorder = Interrupt(epoch=-1)
    history = finetune(config, extra_callbacks=[recorder])
    assert recorder.begun == [1, 2] and len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(history.history["val_cc"]).all()
    assert (tmp_path / "run" / "final.keras").is_file()
    assert sorted(p.name.split("_")[1] for p in (tmp_path / "run" / "cache").glob("*.index")) == \
        ["hamburg", "osie", "rss2015"]

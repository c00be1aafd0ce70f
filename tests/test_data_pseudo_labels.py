"""Pseudo-label TFRecords: schema round trip, atomic shards, validation, and teacher targets in the pipeline."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf import fixations as fx
from fastsal_tf.data.augment import Augmentation
from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.pseudo_labels import PseudoLabelWriter, list_shards, read_pseudo_labels, shard_path
from fastsal_tf.data.registry import read_dataset

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
IMAGE = (DATASETS / "folder" / "images" / "a.png").read_bytes()  # 40×30 ramp: R = 6x + 10
X_RAMP = np.tile(np.linspace(0, 1, 20), (15, 1))  # a teacher "map" at half resolution, growing with x


def prob_label():
    label = np.random.default_rng(0).random((30, 40))
    return label / label.sum()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pseudo")
    with PseudoLabelWriter(shard_path(directory, 0, 2)) as writer:
        writer.write(IMAGE, "a", X_RAMP, "map", "teacher-x", "v1")
    with PseudoLabelWriter(shard_path(directory, 1, 2)) as writer:
        writer.write(IMAGE, "b", prob_label(), "prob", "teacher-y", "v2", storage="float16")
    return directory


def test_round_trip(shards):
    files = list_shards(shards)
    assert [f.name for f in files] == ["pseudo_labels-00000-of-00002.tfrecord", "pseudo_labels-00001-of-00002.tfrecord"]
    records = list(read_pseudo_labels(files).as_numpy_iterator())
    first, second = records
    assert first["image"] == IMAGE and first["id"] == b"a" and (first["height"], first["width"]) == (30, 40)
    np.testing.assert_allclose(first["label"][..., 0], X_RAMP, atol=0.5 / 255 + 1e-6)
    assert (first["kind"], first["teacher"], first["teacher_version"]) == (b"map", b"teacher-x", b"v1")
    assert second["label"].shape == (30, 40, 1) and second["label"].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(second["label"][..., 0], prob_label(), rtol=2e-3)


def test_writer_is_atomic_and_shards_must_be_complete(tmp_path):
    path = shard_path(tmp_path, 0, 2)
    with pytest.raises(RuntimeError):
        with PseudoLabelWriter(path) as writer:
            writer.write(IMAGE, "a", X_RAMP, "map", "t", "1")
            raise RuntimeError("teacher crashed")
    assert list(tmp_path.iterdir()) == []
    with PseudoLabelWriter(path) as writer:
        writer.write(IMAGE, "a", X_RAMP, "map", "t", "1")
    with pytest.raises(DatasetError, match=r"indices \[1\]"):
        list_shards(tmp_path)


@pytest.mark.parametrize("image, label, kind, message", [
    (IMAGE, X_RAMP * 2, "map", "in \\[0, 1\\]"),
    (IMAGE, X_RAMP, "prob", "sum to 1"),
    (IMAGE, np.full((4, 4), np.nan), "map", "NaN"),
    (IMAGE[:100], X_RAMP, "map", "corrupt"),
])
def test_invalid_records_are_refused(tmp_path, image, label, kind, message):
    with PseudoLabelWriter(tmp_path / "x.tfrecord") as writer:
        with pytest.raises(DatasetError, match=message) as error:
            writer.write(image, "img7", label, kind, "t", "1")
    assert error.value.path == "img7"


def test_teacher_target_follows_crops_and_flips(shards):
    config = PipelineConfig(size=(30, 40), batch_size=None, seed=5, shuffle=True, shuffle_buffer=4,
                            augment=Augmentation(crop_scale=(0.4, 1.0), brightness=0, contrast=0, saturation=0))
    for element in build_pipeline(None, config, pseudo_labels=list_shards(shards)).as_numpy_iterator():
        assert set(element) == {"image", "teacher", "id", "original_hw"}
        teacher = element["teacher"][2:-2, 2:-2, 0]
        if element["id"] == b"a":  # the x ramp at label resolution: x_label = (x + 0.5) / 2 - 0.5
            source_x = (element["image"][2:-2, 2:-2, 0] - 10) / 6
            np.testing.assert_allclose(teacher, np.clip(((source_x + 0.5) / 2 - 0.5) / 19, 0, 1), atol=0.02)
        else:
            assert element["teacher"].sum() == pytest.approx(1.0, abs=1e-5)


def test_ground_truth_joined_by_id(shards):
    examples = [e for e in read_dataset("folder", DATASETS / "folder") if e.id in ("a", "b")]
    config = PipelineConfig(size=(30, 40), batch_size=None, sigma_px=2.0)
    dataset = build_pipeline(examples, config, pseudo_labels=list_shards(shards))
    elements = {e["id"]: e for e in dataset.as_numpy_iterator()}
    for example in examples:
        element = elements[example.id.encode()]
        np.testing.assert_array_equal(element["fixation_map"][..., 0], fx.rasterize(example.fixations, (30, 40)))
        assert "teacher" in element and element["density"].sum() == pytest.approx(1.0, abs=1e-5)


def test_pseudo_label_without_ground_truth_is_an_error(shards):
    only_a = [e for e in read_dataset("folder", DATASETS / "folder") if e.id == "a"]
    dataset = build_pipeline(only_a, PipelineConfig(size=(30, 40), sigma_px=2.0), pseudo_labels=list_shards(shards))
    with pytest.raises(tf.errors.InvalidArgumentError, match="without a ground-truth example"):
        list(dataset)

"""tensorflow-datasets builders built from a manual dir of fixtures (no network)."""

import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fastsal_tf.data import builders
from fastsal_tf.fixations import rasterize

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
_spec = importlib.util.spec_from_file_location("make_fixtures", DATASETS / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
OSIE_FIXTURE = builders.SplitFileConfig(name="fixture", split_file=str(DATASETS / "osie" / "osie_split.json"))
EYECROWD_FIXTURE = builders.SplitFileConfig(name="fixture",
                                            split_file=str(DATASETS / "eyecrowd" / "eyecrowd_split.json"))
HAMBURG_FIXTURE = builders.SplitFileConfig(name="fixture",
                                           split_file=str(DATASETS / "hamburg_cv2" / "hamburg_cv2_split.json"))


@pytest.mark.parametrize("builder, manual_dir, config, splits", [
    (builders.Salicon, "salicon", "2017", {"train": 1, "validation": 1}),
    (builders.Salicon, "salicon2015", "2015", {"train": 1, "validation": 1}),
    (builders.Mit1003, "mit/mit1003", None, {"train": 2}),
    (builders.Cat2000, "cat2000", None, {"train": 2}),
    (builders.Osie, "osie", OSIE_FIXTURE, {"train": 2, "validation": 2}),
    (builders.EyeCrowd, "eyecrowd", EYECROWD_FIXTURE, {"full": 3, "train": 2, "validation": 1}),
])
def test_build_from_manual_dir(tmp_path, builder, manual_dir, config, splits):
    assert builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()
    instance = builder(data_dir=str(tmp_path), config=config)
    instance.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(DATASETS / manual_dir), try_download_gcs=False))
    assert {name: info.num_examples for name, info in instance.info.splits.items()} == splits
    for example in tfds.as_numpy(instance.as_dataset(split=next(iter(splits)))):
        height, width = example["original_size"]
        assert example["image"].shape == (height, width, 3) == (30, 40, 3)
        assert example["fixations"].dtype == np.float32 and example["fixations"].shape[1] == 2
        np.testing.assert_array_equal(example["fixation_map"][..., 0], rasterize(example["fixations"], (30, 40)))
        assert example["density_map"].max() >= 254 and example["id"]


def _build(tmp_path, builder, manual_dir, config=None):
    instance = builder(data_dir=str(tmp_path), config=config)
    instance.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(DATASETS / manual_dir), try_download_gcs=False))
    return instance


def test_rss2015_builder_keeps_portrait_images_and_centre_relative_points(tmp_path):
    instance = _build(tmp_path, builders.Rss2015, "rss2015")
    examples = {e["id"].decode(): e for e in tfds.as_numpy(instance.as_dataset(split="full"))}
    assert examples["1_c"]["image"].shape == (30, 40, 3) and examples["2_c"]["image"].shape == (40, 30, 3)
    points = fixtures.RSS2015_FIXATIONS
    np.testing.assert_allclose(examples["1_c"]["fixations"], points["1"][:3])  # (41, 3) lies outside: dropped
    np.testing.assert_allclose(examples["2_c"]["fixations"], points["2"])


def test_hamburg_builder_has_maps_and_no_points(tmp_path):
    instance = _build(tmp_path, builders.HamburgCv2, "hamburg_cv2", HAMBURG_FIXTURE)
    assert {name: info.num_examples for name, info in instance.info.splits.items()} == {"train": 2, "validation": 1}
    (example,) = tfds.as_numpy(instance.as_dataset(split="validation"))
    assert example["id"] == b"image-1" and example["fixations"].shape == (0, 2)
    assert example["fixation_map"].max() == 0
    np.testing.assert_array_equal(example["density_map"][..., 0],
                                  fixtures.continuous_map(fixtures.FIXATIONS["b"]))

"""tensorflow-datasets builders built from a manual dir of fixtures (no network)."""

import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fastsal_tf.data import builders
from fastsal_tf.fixations import rasterize

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
OSIE_FIXTURE = builders.OsieConfig(name="fixture", split_file=str(DATASETS / "osie" / "osie_split.json"))


@pytest.mark.parametrize("builder, manual_dir, config, splits", [
    (builders.Salicon, "salicon", "2017", {"train": 1, "validation": 1}),
    (builders.Salicon, "salicon2015", "2015", {"train": 1, "validation": 1}),
    (builders.Mit1003, "mit/mit1003", None, {"train": 2}),
    (builders.Cat2000, "cat2000", None, {"train": 2}),
    (builders.Osie, "osie", OSIE_FIXTURE, {"train": 2, "validation": 2}),
])
def test_build_from_manual_dir(tmp_path, builder, manual_dir, config, splits):
    assert builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()
    instance = builder(data_dir=str(tmp_path), config=config)
    instance.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(DATASETS / manual_dir), try_download_gcs=False))
    assert {name: info.num_examples for name, info in instance.info.splits.items()} == splits
    for example in tfds.as_numpy(instance.as_dataset(split="train")):
        height, width = example["original_size"]
        assert example["image"].shape == (height, width, 3) == (30, 40, 3)
        assert example["fixations"].dtype == np.float32 and example["fixations"].shape[1] == 2
        np.testing.assert_array_equal(example["fixation_map"][..., 0], rasterize(example["fixations"], (30, 40)))
        assert example["density_map"].max() >= 254 and example["id"]

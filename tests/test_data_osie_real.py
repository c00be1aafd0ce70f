"""Slow: the real OSIE files and SALICON API examples from ../shared (skipped when absent)."""

import json

import numpy as np
import pytest

from fastsal_tf import fixations as fx
from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.readers import osie_split, read_salicon_api
from fastsal_tf.data.registry import read_dataset

pytestmark = pytest.mark.slow


def test_osie_counts_ranges_and_split(shared_dir):
    root = shared_dir / "data" / "osie"
    everything = read_dataset("osie", root)
    assert len(everything) == 700 and not everything.skipped
    points = np.concatenate([e.fixations for e in everything])
    assert len(points) == 98321
    assert points.min() == pytest.approx(0.2) and points.max() == pytest.approx(798.2)  # 1-based 1.2–799.2
    assert {(e.height, e.width) for e in everything} == {(600, 800)}
    shared_split = json.loads((shared_dir / "data" / "osie_split.json").read_text())
    assert osie_split() == {k: shared_split[k] for k in ("train", "validation")}
    validation = read_dataset("osie", root, "validation")
    assert [f"{e.id}.jpg" for e in validation] == shared_split["validation"]
    assert len(read_dataset("osie", root, "train")) == 600


def test_osie_pipeline_matches_numpy_reference(shared_dir):
    validation = read_dataset("osie", shared_dir / "data" / "osie", "validation")[:8]
    config = PipelineConfig(size=(192, 256), sigma_px=24.0, batch_size=None)
    for element, example in zip(build_pipeline(validation, config).as_numpy_iterator(), validation):
        expected = fx.rasterize(example.fixations, (192, 256), (600, 800))
        np.testing.assert_array_equal(element["fixation_map"][..., 0], expected)
        density = fx.density_map(expected, 24.0 * 0.32)
        np.testing.assert_allclose(element["density"][..., 0], density, atol=1e-5 * density.max())


def test_salicon_api_examples(shared_dir):
    root = shared_dir / "data" / "salicon_examples"
    examples = read_dataset("salicon_api", root, "train2014examples")
    assert len(examples) == 10 and all((e.height, e.width) == (480, 640) for e in examples)
    with pytest.raises(DatasetError, match="older SALICON API variant"):
        read_salicon_api(root / "_old_commit_dcb982a" / "annotations" / "fixations_val2014_examples.json",
                         root / "_old_commit_dcb982a" / "images" / "examples")

"""Every reader on its fixture: file conventions converted to internal 0-based (x, y) points."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.readers import osie_split, read_fixation_file, read_salicon_api
from fastsal_tf.data.registry import DATASETS as REGISTRY, get_reader, read_dataset

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
_spec = importlib.util.spec_from_file_location("make_fixtures", DATASETS / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
A, B = fixtures.FIXATIONS["a"], fixtures.FIXATIONS["b"]


def unique_sorted(points):
    return sorted(set(map(tuple, np.asarray(points).tolist())))


@pytest.mark.parametrize("name, root, split", [
    ("salicon", "salicon", "train"), ("salicon2015", "salicon2015", "train"),
    ("salicon_api", "salicon_api", "train2014"),
])
def test_salicon_variants_give_the_same_points(name, root, split):
    examples = read_dataset(name, DATASETS / root, split)
    np.testing.assert_array_equal(examples[0].fixations, A)
    assert (examples[0].height, examples[0].width) == (30, 40)


def test_salicon_splits_maps_and_release_check():
    validation = read_dataset("salicon", DATASETS / "salicon", "validation")
    assert validation[0].id == "COCO_val2014_000000000002" and validation[0].map_path.suffix == ".png"
    np.testing.assert_array_equal(validation[0].fixations, B)
    test = read_dataset("salicon", DATASETS / "salicon", "test")
    assert test[0].fixations is None and test[0].map_path is None
    with pytest.raises(DatasetError, match="SALICON 2015 file"):
        read_dataset("salicon", DATASETS / "salicon2015", "train")
    with pytest.raises(DatasetError, match="SALICON 2017 file"):
        read_dataset("salicon2015", DATASETS / "salicon", "train")


def test_mit_and_cat2000_points_from_binary_maps():
    mit = read_dataset("mit1003", DATASETS / "mit" / "mit1003")
    assert [e.id for e in mit] == ["a", "b"]
    assert unique_sorted(mit[0].fixations) == unique_sorted(A) and mit[0].map_path.name == "a_fixMap.jpg"
    assert [e.fixations for e in read_dataset("mit300", DATASETS / "mit" / "mit300")] == [None, None]
    cat = read_dataset("cat2000", DATASETS / "cat2000", "train")
    assert [e.id for e in cat] == ["Action/001", "Art/002"]
    assert unique_sorted(cat[1].fixations) == unique_sorted(B)
    assert [e.id for e in read_dataset("cat2000", DATASETS / "cat2000", "test")] == ["Action/101"]


def test_osie_fractional_one_based_points_and_split():
    split_file = DATASETS / "osie" / "osie_split.json"
    train = read_dataset("osie", DATASETS / "osie", "train", split_file=split_file)
    assert [e.id for e in train] == ["1001", "1002"]
    np.testing.assert_allclose(train[0].fixations, fixtures.OSIE_FIXATIONS["1001"])
    assert len(read_dataset("osie", DATASETS / "osie")) == 4


def test_packaged_osie_split_is_the_fixed_600_100_split():
    split = osie_split()
    assert len(split["train"]) == 600 and len(split["validation"]) == 100
    assert not set(split["train"]) & set(split["validation"])
    # the fixture has 2 of the 100 validation images: the rest are reported, or skipped and counted
    with pytest.raises(DatasetError, match="image not found"):
        read_dataset("osie", DATASETS / "osie", "validation")
    result = read_dataset("osie", DATASETS / "osie", "validation", skip_bad=True)
    assert [e.id for e in result] == ["1010", "1024"] and len(result.skipped) == 98
    assert "2 examples, 98 skipped" in result.summary()


def test_folder_formats():
    examples = {e.id: e for e in read_dataset("folder", DATASETS / "folder")}
    np.testing.assert_array_equal(examples["a"].fixations, A)  # CSV, 0-based
    np.testing.assert_array_equal(examples["b"].fixations, B)  # JSON, 0-based
    np.testing.assert_array_equal(examples["c"].fixations, A)  # .mat, 1-based
    assert examples["d"].fixations is None and examples["d"].map_path.name == "d.png"
    assert examples["b"].map_path.name == "b.png" and examples["a"].map_path is None
    np.testing.assert_array_equal(read_fixation_file(DATASETS / "folder" / "fixations" / "c.mat"), A)


def test_salicon_api_rejects_raw_xy_variant(tmp_path):
    data = json.loads((DATASETS / "salicon_api" / "annotations" / "fixations_train2014.json").read_text())
    data["annotations"][0]["fixations"] = [[5.5, 4.25]]
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="older SALICON API variant"):
        read_salicon_api(tmp_path / "old.json", DATASETS / "salicon_api" / "images" / "train2014")


def test_registry():
    assert set(REGISTRY) == {"salicon", "salicon2015", "salicon_api", "mit1003", "mit300", "cat2000", "osie", "folder",
                             "eyecrowd", "hamburg_cv2", "rss2015", "photos"}
    assert get_reader("osie").pixels_per_degree == 24.0
    with pytest.raises(ValueError, match="unknown dataset"):
        get_reader("nope")
    with pytest.raises(ValueError, match="split"):
        read_dataset("osie", DATASETS / "osie", "test")

"""Readers of the extra sets (EXTRA.md) on their fixtures: EyeCrowd, hamburg_cv2, rss2015, photo folders."""

import importlib.util
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.readers import eyecrowd_split, hamburg_split
from fastsal_tf.data.registry import get_reader, read_dataset

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
_spec = importlib.util.spec_from_file_location("make_fixtures", DATASETS / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
EXTRA = pathlib.Path(os.environ.get("FASTSAL_EXTRA_DATA", pathlib.Path(__file__).parents[2] / "data" / "extra"))


def test_eyecrowd_one_based_points_all_and_fixed_splits():
    root = DATASETS / "eyecrowd"
    everything = read_dataset("eyecrowd", root)
    assert [e.id for e in everything] == ["001", "002", "003"]
    for example in everything:
        np.testing.assert_allclose(example.fixations, fixtures.EYECROWD_FIXATIONS[example.id])
    split_file = root / "eyecrowd_split.json"
    assert [e.id for e in read_dataset("eyecrowd", root, "train", split_file=split_file)] == ["001", "003"]
    assert [e.id for e in read_dataset("eyecrowd", root, "validation", split_file=split_file)] == ["002"]
    with pytest.raises(ValueError, match="EyeCrowd split must be one of"):
        read_dataset("eyecrowd", root, "test")


def test_packaged_eyecrowd_split_is_400_100_of_the_500_names():
    split = eyecrowd_split()
    assert (len(split["train"]), len(split["validation"])) == (400, 100)
    assert sorted(split["train"] + split["validation"]) == [f"{k:03d}.jpg" for k in range(1, 501)]


def test_dataset_sigmas():
    assert get_reader("osie").sigma_px == 24.0
    assert get_reader("eyecrowd").sigma_px == 26.0 and get_reader("rss2015").sigma_px == 26.0
    assert get_reader("hamburg_cv2").sigma_px is None and get_reader("photos").sigma_px is None


def test_hamburg_maps_without_points_and_split():
    root = DATASETS / "hamburg_cv2"
    everything = read_dataset("hamburg_cv2", root)
    assert [e.id for e in everything] == ["image-0", "image-1", "image-5"]
    assert all(e.fixations is None for e in everything)
    assert [e.map_path.name for e in everything] == ["fixation-0.png", "fixation-1.png", "fixation-5.png"]
    split_file = root / "hamburg_cv2_split.json"
    assert [e.id for e in read_dataset("hamburg_cv2", root, "train", split_file=split_file)] == ["image-0", "image-5"]


def test_hamburg_split_naming_a_missing_image_or_map(tmp_path):
    root = tmp_path / "hamburg"
    shutil.copytree(DATASETS / "hamburg_cv2", root)
    (root / "data" / "training" / "fixations" / "train" / "fixation-5.png").unlink()
    split_file = root / "hamburg_cv2_split.json"
    with pytest.raises(DatasetError, match=r"fixation-5\.png: listed in the split file but not found"):
        read_dataset("hamburg_cv2", root, "train", split_file=split_file)
    result = read_dataset("hamburg_cv2", root, "train", split_file=split_file, skip_bad=True)
    assert [e.id for e in result] == ["image-0"] and result.skipped[0].path.endswith("fixation-5.png")
    with pytest.raises(DatasetError, match=r"image-5\.png: image without labels"):
        read_dataset("hamburg_cv2", root)


def test_packaged_hamburg_split_keeps_near_duplicates_together():
    split = hamburg_split()
    assert (len(split["train"]), len(split["validation"])) == (2801, 200)
    excluded = {473, 752, 1940, 2680, 2998}
    expected = {f"image-{n}" for n in range(3006) if n not in excluded}
    assert set(split["train"]) | set(split["validation"]) == expected
    side = {name: part for part, names in split.items() for name in names}
    # near-identical images with different maps, found by training/splits/make_extra_splits.py
    for group in (("image-95", "image-1158", "image-2245"), ("image-316", "image-2985"), ("image-706", "image-1649",
                  "image-2858"), ("image-1710", "image-2179"), ("image-2567", "image-2931")):
        assert len({side[name] for name in group}) == 1, group


def test_rss2015_centre_relative_points_y_up_and_outside_dropped():
    result = read_dataset("rss2015", DATASETS / "rss2015")
    by_id = {e.id: e for e in result}
    assert list(by_id) == ["1_c", "2_c"]
    assert (by_id["2_c"].height, by_id["2_c"].width) == (40, 30)
    np.testing.assert_allclose(by_id["1_c"].fixations, fixtures.RSS2015_FIXATIONS["1"][:3])
    np.testing.assert_allclose(by_id["2_c"].fixations, fixtures.RSS2015_FIXATIONS["2"])
    assert result.dropped_fixations == 1  # (41, 3) lies right of the 40-pixel-wide image 1
    with pytest.raises(DatasetError, match=r"data.csv\[image 1\]: 1 of 4 fixations lie outside"):
        read_dataset("rss2015", DATASETS / "rss2015", outside="error")


@pytest.mark.parametrize("text, message", [
    ('"fx","fy"\n', "unexpected header"),
    ('"fx","fy","duration","fixation","subject","condition","image","format"\n1,2,3,4,"n1","normal",1,"l"\n',
     "line 2 has 8 fields, expected 9"),
    ('"fx","fy","duration","fixation","subject","condition","image","format"\n"1",a,2,3,4,"n1","normal",1,"l"\n',
     "non-numeric fx / fy"),
    ('"fx","fy","duration","fixation","subject","condition","image","format"\n"1",1,2,3,4,"n1","normal",9,"l"\n',
     "fixations for image 9"),
])
def test_rss2015_bad_csv_names_the_file(tmp_path, text, message):
    root = tmp_path / "rss"
    shutil.copytree(DATASETS / "rss2015", root)
    (root / "data.csv").write_text(text)
    with pytest.raises(DatasetError, match=message) as error:
        read_dataset("rss2015", root)
    assert str(root / "data.csv") in str(error.value)


def test_photo_folder_recursive_ids_and_bad_files(tmp_path):
    root = DATASETS / "photos"
    with pytest.raises(DatasetError, match=r"bad\.jpg: unreadable or corrupt image"):
        read_dataset("photos", root, skip_bad=False)
    result = read_dataset("photos", root)
    assert [e.id for e in result] == ["a", "sub/a", "sub/deeper/b"]
    assert all(e.fixations is None and e.map_path is None for e in result)
    assert [pathlib.Path(s.path).name for s in result.skipped] == ["bad.jpg"]
    clash = tmp_path / "clash"
    clash.mkdir()
    for name in ("x.jpg", "x.png"):
        shutil.copy(root / "sub" / "a.png", clash / name)
    with pytest.raises(DatasetError, match="two images share the id 'x'"):
        read_dataset("photos", clash)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images in the folder or its sub-folders"):
        read_dataset("photos", tmp_path / "empty")
    with pytest.raises(DatasetError, match="folder not found"):
        read_dataset("photos", tmp_path / "missing")


def test_split_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"train": ["001.jpg"], "validation": ["001.jpg"]}))
    with pytest.raises(DatasetError, match=r"split.json: '001.jpg' is in both 'train' and 'validation'"):
        read_dataset("eyecrowd", DATASETS / "eyecrowd", "train", split_file=bad)
    bad.write_text("{")
    with pytest.raises(DatasetError, match="not a split file"):
        read_dataset("eyecrowd", DATASETS / "eyecrowd", "train", split_file=bad)
    with pytest.raises(DatasetError, match="split file not found"):
        read_dataset("hamburg_cv2", DATASETS / "hamburg_cv2", "train", split_file=tmp_path / "none.json")


@pytest.mark.slow
@pytest.mark.skipif(not (EXTRA / "eyecrowd").is_dir(), reason="extra data not materialised (EXTRA.md)")
def test_real_extra_sets_match_extra_md():
    eyecrowd = read_dataset("eyecrowd", EXTRA / "eyecrowd")
    assert len(eyecrowd) == 500 and {(e.height, e.width) for e in eyecrowd} == {(768, 1024)}
    counts = [len(e.fixations) for e in eyecrowd]
    assert (min(counts), max(counts)) == (206, 301)
    hamburg = read_dataset("hamburg_cv2", EXTRA / "hamburg_cv2")
    assert len(hamburg) == 3001 and {(e.height, e.width) for e in hamburg} == {(224, 224)}
    rss = read_dataset("rss2015", EXTRA / "rss2015")
    assert len(rss) == 60 and sorted(e.id for e in rss if e.height > e.width) == ["20_c", "7_c", "8_c"]
    total = sum(len(e.fixations) for e in rss) + rss.dropped_fixations
    assert 0.98 < 1 - rss.dropped_fixations / total < 0.995 and 140 < total / 60 < 160

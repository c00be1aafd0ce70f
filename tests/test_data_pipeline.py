"""The tf.data pipeline on the tiny fixtures: exact alignment of maps with images and with the numpy
reference (fastsal_tf.fixations) under stretch, letterbox, flip and random crops."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf import fixations as fx
from fastsal_tf.data.augment import Augmentation
from fastsal_tf.data.example import SaliencyExample
from fastsal_tf.data.geometry import letterbox_params
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.registry import read_dataset

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
GEOMETRY_ONLY = Augmentation(flip=True, crop_scale=(0.3, 1.0), brightness=0, contrast=0, saturation=0)


@pytest.fixture(scope="module")
def folder_examples():
    """Fixture images a (lossless PNG ramp, 5 fixations with a duplicate), b and c (JPEG)."""
    return [e for e in read_dataset("folder", DATASETS / "folder") if e.fixations is not None]


def elements(examples, **config):
    return list(build_pipeline(examples, PipelineConfig(batch_size=None, **config)).as_numpy_iterator())


def test_stretch_matches_numpy_reference(folder_examples):
    out = elements(folder_examples, size=(24, 32), sigma_px=3.0)
    for element, example in zip(out, folder_examples):
        expected = fx.rasterize(example.fixations, (24, 32), (30, 40))
        np.testing.assert_array_equal(element["fixation_map"][..., 0], expected)
        density = fx.density_map(expected, 3.0 * 0.8)
        np.testing.assert_allclose(element["density"][..., 0], density, atol=1e-6 * density.max())
        assert element["density"].sum() == pytest.approx(1.0, abs=1e-5)
        assert element["density_max1"].max() == pytest.approx(1.0)
        assert element["num_fixations"] == len(example.fixations)
        assert element["id"].decode() == example.id and tuple(element["original_hw"]) == (30, 40)
        assert element["image"].dtype == np.float32 and element["image"].shape == (24, 32, 3)


def test_letterbox_places_points_and_pads_with_zeros(folder_examples):
    size = (40, 40)
    placement = letterbox_params((30, 40), size)
    assert placement.content_hw == (30, 40) and placement.offset_yx == (5, 0)
    element = elements(folder_examples[:1], size=size, resize="letterbox", sigma_px=2.0)[0]
    expected = np.zeros(size, dtype=bool)
    expected[5:35] = fx.rasterize(folder_examples[0].fixations, (30, 40))
    np.testing.assert_array_equal(element["fixation_map"][..., 0], expected)
    for key in ("image", "density", "fixation_map"):
        assert not element[key][:5].any() and not element[key][35:].any()
    np.testing.assert_allclose(element["image"][5:35], tf.io.decode_png(
        tf.io.read_file(str(folder_examples[0].image_path))).numpy(), atol=1e-3)


def source_coordinates(image):
    """The fixture ramp: R = 6x + 10, G = 8y + 10 → (x, y) of the source pixel each output pixel shows."""
    return (image[..., 0] - 10) / 6, (image[..., 1] - 10) / 8


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_random_crop_and_flip_keep_fixations_on_their_pixels(folder_examples, resize):
    example = folder_examples[0]  # lossless ramp: image values tell the source position exactly
    out = elements([example] * 24, size=(60, 80), resize=resize, sigma_px=2.0, augment=GEOMETRY_ONLY, seed=3)
    flips = 0
    for element in out:
        xs, ys = source_coordinates(element["image"])
        rows, cols = np.nonzero(element["fixation_map"][..., 0])
        assert len(rows) > 0
        flips += int(xs[0, -1] < xs[0, 0])
        for r, c in zip(rows, cols):
            # an output pixel spans at most 40/80·(1/0.3)^0.5 ≈ 0.9 source px; rounding moves a point ≤ half of it
            distance = np.min(np.abs(example.fixations - [xs[r, c], ys[r, c]]).max(axis=1))
            assert distance <= 0.5 + 1e-3
        assert element["num_fixations"] >= len(set(zip(rows, cols)))
        assert element["density"].sum() == pytest.approx(1.0, abs=1e-5)
    assert 0 < flips < len(out)


def test_crop_density_includes_blur_of_points_just_outside():
    example = SaliencyExample("p", DATASETS / "folder" / "images" / "a.png", 30, 40, np.array([[0.0, 15.0]]))
    crop = Augmentation(flip=False, crop_scale=(0.5, 0.5), crop_ratio=(1, 1), brightness=0, contrast=0,
                        saturation=0)
    out = elements([example] * 8, size=(30, 40), sigma_px=4.0, augment=crop, seed=0)
    outside = [e for e in out if e["num_fixations"] == 0]
    assert outside, "some crops should leave the point out"
    for element in outside:
        assert not element["fixation_map"].any()
        assert element["density"].sum() == pytest.approx(1.0, abs=1e-5)  # the blur reaches into the crop


def test_same_seed_same_batches_and_reshuffled_epochs(folder_examples):
    config = PipelineConfig(size=(24, 32), sigma_px=2.0, augment=Augmentation(), shuffle=True, seed=7,
                            batch_size=2)
    first = list(build_pipeline(folder_examples * 2, config).as_numpy_iterator())
    again = list(build_pipeline(folder_examples * 2, config).as_numpy_iterator())
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["id"], b["id"])
    dataset = build_pipeline(folder_examples * 2, config)
    epochs = [np.concatenate([b["image"] for b in dataset.as_numpy_iterator()]) for _ in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])


def test_cache_gives_the_same_elements(folder_examples, tmp_path):
    plain = elements(folder_examples, size=(24, 32), sigma_px=2.0)
    cached = elements(folder_examples, size=(24, 32), sigma_px=2.0, cache=str(tmp_path / "cache"))
    for a, b in zip(plain, cached):
        np.testing.assert_allclose(a["image"], b["image"], atol=1e-4)
        np.testing.assert_array_equal(a["fixation_map"], b["fixation_map"])
    augmented = elements(folder_examples, size=(24, 32), sigma_px=2.0, cache=True, augment=GEOMETRY_ONLY, seed=1)
    assert len(augmented) == len(folder_examples)


def test_fit_targets_give_model_fit_tuples(folder_examples):
    config = PipelineConfig(size=(24, 32), sigma_px=2.0, batch_size=2,
                            fit_targets={"prob": "density", "map": "density_max1"})
    image, targets = next(iter(build_pipeline(folder_examples, config)))
    assert image.shape == (2, 24, 32, 3) and set(targets) == {"prob", "map"}
    np.testing.assert_allclose(tf.reduce_sum(targets["prob"], axis=[1, 2, 3]), 1.0, atol=1e-5)


def test_density_from_maps_and_sigma_in_degrees():
    salicon = read_dataset("salicon", DATASETS / "salicon", "train")
    element = elements(salicon, size=(30, 40), density_from="map")[0]
    expected = tf.io.decode_png(tf.io.read_file(str(salicon[0].map_path))).numpy()[..., 0] / 255.0
    np.testing.assert_allclose(element["density_max1"][..., 0], expected / expected.max(), atol=1e-5)
    assert element["fixation_map"].sum() == 4  # five fixations, one duplicate
    by_degrees = elements(salicon, size=(30, 40), sigma_deg=0.5, pixels_per_degree=4.0)[0]
    by_pixels = elements(salicon, size=(30, 40), sigma_px=2.0)[0]
    np.testing.assert_allclose(by_degrees["density"], by_pixels["density"])


def test_images_only_and_label_mismatch():
    mit300 = read_dataset("mit300", DATASETS / "mit" / "mit300")
    element = elements(mit300, size=(24, 32))[0]
    assert set(element) == {"image", "id", "original_hw"}
    mixed = read_dataset("folder", DATASETS / "folder")
    with pytest.raises(ValueError, match="choose density_from"):
        build_pipeline(mixed, PipelineConfig(sigma_px=2.0))
    with pytest.raises(ValueError, match="need sigma"):
        osie = read_dataset("osie", DATASETS / "osie", "train", split_file=DATASETS / "osie" / "osie_split.json")
        build_pipeline(osie, PipelineConfig())


IDENTITY = Augmentation(flip=False, crop_scale=None, brightness=0, contrast=0, saturation=0)


@pytest.mark.parametrize("resize, cache_size", [("stretch", (60, 80)), ("stretch", (45, 50)), ("letterbox", (60, 60))])
def test_cache_size_keeps_targets_of_the_full_size_path(folder_examples, resize, cache_size):
    """Images decoded once at cache_size: points and sigma follow the image, so the fixation map is the same
    and the density the same up to float rounding; the image only differs by resampling."""
    common = dict(size=(24, 32), sigma_px=3.0, resize=resize, augment=IDENTITY, cache=True, seed=0)
    full = elements(folder_examples, **common)
    small = elements(folder_examples, cache_size=cache_size, **common)
    for a, b in zip(full, small):
        assert a["id"] == b["id"]
        np.testing.assert_array_equal(a["fixation_map"], b["fixation_map"])
        np.testing.assert_allclose(a["density"], b["density"], atol=2e-3 * a["density"].max())
        assert np.corrcoef(a["density"].ravel(), b["density"].ravel())[0, 1] > 0.9999
        assert np.abs(a["image"] - b["image"]).mean() < 3.0
    with pytest.raises(ValueError, match="cache_size"):
        PipelineConfig(cache_size=(0, 10))

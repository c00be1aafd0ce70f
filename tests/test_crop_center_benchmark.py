"""benchmarks/crop_center.py: its map cache follows the model file, the crop timing runs end to end, and the
gap closed comes with a standard error that matches resampling."""

import importlib.util
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("crop_center_benchmark", ROOT / "benchmarks" / "crop_center.py")
crop_center = importlib.util.module_from_spec(_spec)
sys.modules["crop_center_benchmark"] = crop_center
_spec.loader.exec_module(crop_center)


def test_map_cache_is_named_by_the_model_file_not_the_spec(tmp_path):
    from fastsal_tf.runtime.resolve import ASSETS_DIR, SHIPPED_MODELS

    work = tmp_path / "work"
    assert crop_center.maps_cache(work, "osie", "default") != crop_center.maps_cache(work, "osie", "fast")
    assert crop_center.maps_cache(work, "osie", "fast") == crop_center.maps_cache(work, "osie", "fast")
    assert crop_center.maps_cache(work, "osie", "fast") != crop_center.maps_cache(work, "eyecrowd", "fast")
    variants = {crop_center.maps_cache(work, "osie", "fast", multiscale, flip)
                for multiscale in (False, True) for flip in (False, True)}
    assert len(variants) == 4
    copy = tmp_path / "model.tflite"
    shutil.copyfile(ASSETS_DIR / SHIPPED_MODELS["fast-int8"], copy)
    before = crop_center.maps_cache(work, "osie", str(copy))
    os.utime(copy, ns=(1, 1))  # the same name, another file (as when a shipped name is re-pointed)
    assert crop_center.maps_cache(work, "osie", str(copy)) != before


def test_crop_timing_runs_on_photos(tmp_path):
    """The timed job is `fastsal crop --json` (boxes, no crop files); the reference job writes the maps."""
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(stimuli / f"{index}.png")
    lines = crop_center.crop_throughput(stimuli, tmp_path / "work", 3, 1, model="fast-int8")
    assert "3 OSIE photos as 640x480" in lines[0] and "images/s" in lines[0] and "images/s" in lines[1]
    assert not (tmp_path / "work" / "crops").exists()
    assert sorted(path.name for path in (tmp_path / "work" / "maps").iterdir()) == [f"{i}_saliency.png" for i in range(3)]
    with Image.open(tmp_path / "work" / f"osie_640x480_3" / "0.jpg") as image:
        assert image.size == (640, 480)


def test_flip_maps_average_the_mirrored_photo(tmp_path):
    """--flip: each map is the mean of the frame's map and the mirrored map of the mirrored frame (the flip
    model runs in Keras, the reference here in LiteRT: fp32 parity)."""
    import types

    from fastsal_tf.api import load_model

    rng = np.random.default_rng(1)
    examples = []
    for index in range(2):
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        pixels[:, :20] //= 4  # dark left side: the mirrored photo's map differs from the plain one
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
        Image.fromarray(pixels[:, ::-1]).save(tmp_path / f"{index}_mirror.png")
        examples.append(types.SimpleNamespace(id=str(index), image_path=tmp_path / f"{index}.png"))
    flipped = crop_center.network_maps(examples, "fast", tmp_path / "flip.npz", flip=True)
    plain = crop_center.network_maps(examples, "fast", tmp_path / "plain.npz")
    predictor = load_model("fast")
    mirrored = predictor.infer([predictor.prepare(tmp_path / f"{i}_mirror.png") for i in range(2)])[:, :, ::-1]
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, rtol=1e-4, atol=1e-5 * plain.max())
    assert np.abs(flipped - plain).max() > 0.01 * plain.max()
    np.testing.assert_array_equal(crop_center.network_maps(examples, "fast", tmp_path / "flip.npz", flip=True), flipped)


def test_gap_closed_and_its_standard_error_against_a_resampling_check():
    """The ratio of means, and a delta-method standard error that agrees with the spread of the ratio over many
    independent samples of the same per-image distribution."""
    gap_closed = crop_center.gap_closed
    rng = np.random.default_rng(3)

    def sample(n):
        centred = rng.uniform(0.5, 0.9, n)
        oracle = centred + rng.uniform(0.0, 0.1, n)
        method = centred + 0.5 * (oracle - centred) + rng.normal(0, 0.02, n)
        return method, centred, oracle

    method, centred, oracle = sample(400)
    ratio, error = gap_closed(method, centred, oracle)
    assert ratio == pytest.approx((method.mean() - centred.mean()) / (oracle.mean() - centred.mean()))
    spread = np.std([gap_closed(*sample(400))[0] for _ in range(400)])
    assert error == pytest.approx(spread, rel=0.2)
    assert gap_closed([0.8, 0.9], [0.8, 0.9], [0.9, 1.0]) == (0.0, 0.0)

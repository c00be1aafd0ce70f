"""Crops and attention centres from saliency maps (fastsal_tf.predict.decisions) and their scores against
fixations (fastsal_tf.evaluation.crop_scores), checked against brute-force definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastsal_tf.evaluation import crop_scores as cs
from fastsal_tf.predict import decisions as d
from fastsal_tf.imaging import centered_gaussian


def brute_window_sums(mass, box_h, box_w):
    height, width = mass.shape
    return np.array([[mass[y:y + box_h, x:x + box_w].sum() for x in range(width - box_w + 1)]
                     for y in range(height - box_h + 1)])


def brute_best(mass, box_h, box_w):
    sums = brute_window_sums(mass, box_h, box_w)
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)


def test_window_sums_equal_brute_force():
    mass = np.random.default_rng(0).random((7, 9))
    for box_h in range(1, 8):
        for box_w in range(1, 10):
            np.testing.assert_allclose(d.window_sums(mass, (box_h, box_w)), brute_window_sums(mass, box_h, box_w),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("image_hw", [(30, 40), (40, 30), (25, 25), (1, 50)])
@pytest.mark.parametrize("scale", [1.0, 0.61])
def test_crop_sizes_fit_keep_the_ratio_and_are_the_largest(image_hw, scale):
    height, width = image_hw
    for text in ("1:1", "16:9", "9:16", "4:3", "1.91:1", "2:5"):
        aspect = d.parse_aspect(text)
        ratio = aspect.width / aspect.height
        try:
            box_h, box_w = d.crop_size(image_hw, aspect, scale)
        except ValueError as error:
            assert "too small" in str(error) and min(height * ratio, width / ratio) * scale < 1.5
            continue
        assert 1 <= box_h <= height and 1 <= box_w <= width
        # within one pixel of the exact ratio: a box of ratio w:h with these sides ± 1 pixel exists
        assert abs(box_w - box_h * ratio) <= 1 or abs(box_h - box_w / ratio) <= 1
        largest_h = min(height, width / ratio)  # the exact largest box of the ratio
        assert abs(box_h - largest_h * scale) <= 1 and abs(box_w - largest_h * ratio * scale) <= 1


def test_crop_size_errors():
    with pytest.raises(ValueError, match=r"3x1 image is too small for a 1:9 crop"):
        d.crop_size((1, 3), d.parse_aspect("1:9"))
    for scale in (0, -0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            d.crop_size((10, 10), d.parse_aspect("1:1"), scale)


@pytest.mark.parametrize("text", ["0:1", "16:0", "abc", "1:2:3", "-4:3", "inf:1", "nan:1", "", "16/9", ":9"])
def test_bad_aspects_are_refused(text):
    with pytest.raises(ValueError, match="aspect ratio"):
        d.parse_aspect(text)


def test_aspect_forms():
    assert d.parse_aspect("16:9") == d.parse_aspect((16, 9)) == d.Aspect(16.0, 9.0)
    assert (d.parse_aspect(" 1.91:1 ").label, d.parse_aspect("1.91:1").tag) == ("1.91:1", "1.91x1")


@pytest.mark.parametrize("prior, sigma", [(0.0, d.PRIOR_SIGMA), (0.3, d.PRIOR_SIGMA), (0.9, 0.06)])
@pytest.mark.parametrize("scale", [1.0, 0.55])
def test_crop_boxes_hold_the_most_mass_of_the_map_with_the_prior(prior, sigma, scale):
    rng = np.random.default_rng(1)
    prob = rng.random((24, 36)) ** 4
    prob /= prob.sum()
    q = (1 - prior) * prob + prior * centered_gaussian(prob.shape, sigma, np.float64)  # the definition
    aspects = ["1:1", "16:9", "9:16", "3:1"]
    for aspect, box in zip(aspects, d.crop_boxes(prob, prob.shape, aspects, scale, prior=prior, prior_sigma=sigma)):
        box_h, box_w = d.crop_size(prob.shape, d.parse_aspect(aspect), scale)
        assert (box[3] - box[1], box[2] - box[0]) == (box_h, box_w)
        assert box[:2] == brute_best(q, box_h, box_w)[::-1]


def test_uniform_map_gives_centred_crops_and_centre():
    flat = np.full((60, 80), 1 / 4800)
    boxes = d.crop_boxes(flat, (60, 80), ["1:1", "9:16", "16:9"], prior=0.0)
    assert boxes == [(10, 0, 70, 60), (23, 0, 57, 60), (0, 7, 80, 52)]
    x, y = d.attention_center(np.zeros((60, 80)), (60, 80))  # no mass: uniform, so the prior decides
    assert abs(x - 39.5) <= 1 and abs(y - 29.5) <= 1


def test_a_map_smaller_than_the_image_is_scaled_back():
    prob = np.zeros((48, 64))
    prob[10:14, 50:54] = 1  # a spot at x 50-54, y 10-14 of a 64x48 map: x 400-432, y 80-112 of 512x384
    (x0, y0, x1, y1), = d.crop_boxes(prob, (384, 512), ["1:2"], scale=0.5, prior=0.0)
    assert (y1 - y0, x1 - x0) == (192, 96)
    assert x0 <= 400 and 432 <= x1 and y0 <= 80 and 112 <= y1 and x1 <= 512 and y0 >= 0
    ys, xs = np.indices(prob.shape)
    blob = np.exp(-((xs - 51.5) ** 2 + (ys - 11.5) ** 2) / 8)  # peak at x 415.5, y 95.5 of the image
    x, y = d.attention_center(blob, (384, 512), prior=0.0)
    assert abs(x - 415.5) <= 8 and abs(y - 95.5) <= 8


@pytest.mark.parametrize("image_hw, content_hw, expected", [
    ((480, 640), (352, 480), (360, 480)),  # a 4:3 photo stretched into default's frame: the width decides
    ((1080, 1920), (192, 256), (192, 341)),  # 16:9 into fast's frame: the height decides
    ((96, 128), (192, 256), (96, 128)),  # smaller than the network: never upsampled
    ((1000, 100), (352, 480), (1000, 100)),  # narrower than the network: kept
    ((3000, 4000), (264, 352), (264, 352)),  # letterboxed content of the same aspect
])
def test_map_size_is_the_image_scaled_to_the_network_resolution(image_hw, content_hw, expected):
    got = d.map_size(image_hw, content_hw)
    assert got == expected
    assert abs(got[1] / got[0] - image_hw[1] / image_hw[0]) <= 1 / min(got)  # aspect kept to a pixel


def test_crops_searched_on_the_smaller_map_hold_nearly_the_best_mass():
    """The box found on a map at map_size is within 2 px of the best box on the map at the image's size and
    holds within 1e-4 of its mass (the search's only loss is the coarser grid of placements; a 10-px shift of
    these boxes loses 4e-4 to 2e-3)."""
    rng = np.random.default_rng(5)
    from PIL import Image

    small = np.asarray(Image.fromarray(rng.random((6, 8)).astype(np.float32) ** 4).resize(
        (480, 352), Image.Resampling.BICUBIC), np.float64)  # a smooth network-frame map
    small = np.maximum(small, 0)
    image_hw = (480, 640)
    size = d.map_size(image_hw, small.shape)
    coarse = np.asarray(Image.fromarray(small.astype(np.float32)).resize(size[::-1], Image.Resampling.BILINEAR),
                        np.float64)
    full = np.asarray(Image.fromarray(small.astype(np.float32)).resize(image_hw[::-1], Image.Resampling.BILINEAR),
                      np.float64)
    full /= full.sum()
    q = 0.7 * full + 0.3 * centered_gaussian(image_hw, d.PRIOR_SIGMA, np.float64)
    aspects = ["1:1", "16:9", "9:16", "1:3"]
    for scale in (1.0, 0.6):
        exact = d.crop_boxes(full, image_hw, aspects, scale, prior=0.3)
        searched = d.crop_boxes(coarse / coarse.sum(), image_hw, aspects, scale, prior=0.3)
        for (ex0, ey0, ex1, ey1), (x0, y0, x1, y1) in zip(exact, searched):
            assert (x1 - x0, y1 - y0) == (ex1 - ex0, ey1 - ey0)
            assert abs(x0 - ex0) <= 2 and abs(y0 - ey0) <= 2
            assert q[y0:y1, x0:x1].sum() >= q[ey0:ey1, ex0:ex1].sum() - 1e-4


@pytest.mark.parametrize("prior", [0.0, 0.4])
def test_attention_center_is_the_disk_holding_the_most_mass(prior):
    rng = np.random.default_rng(2)
    prob = rng.random((30, 40)) ** 6
    prob /= prob.sum()
    q = (1 - prior) * prob + prior * centered_gaussian(prob.shape, d.PRIOR_SIGMA, np.float64)
    radius = 0.1 * math.hypot(30, 40)  # 5 px
    ys, xs = np.indices(prob.shape)
    best = max(((q[(ys - y) ** 2 + (xs - x) ** 2 <= radius ** 2].sum(), (x, y))
                for y in range(30) for x in range(40)))[1]
    assert d.attention_center(prob, (30, 40), prior=prior) == best  # one-pixel blocks: exact


def test_attention_center_on_blocks_is_near_the_exact_answer():
    ys, xs = np.indices((300, 400))
    prob = np.exp(-((xs - 69.5) ** 2 + (ys - 209.5) ** 2) / 200)
    x, y = d.attention_center(prob, (300, 400), prior=0.0, grid=50)  # 8-pixel blocks
    assert abs(x - 69.5) <= 8 and abs(y - 209.5) <= 8


# ------------------------------------------------------------------------------------------------ scores


def test_coverage_and_hit_rate_by_hand():
    fixations = np.array([[1.2, 1.0], [4.6, 2.0], [9.0, 9.0], [0.0, 0.4]])  # nearest pixels (1,1) (5,2) (9,9) (0,0)
    counts = cs.fixation_counts(fixations, (10, 10))
    assert cs.coverage(counts, (0, 0, 5, 5)) == 0.5  # (5, 2) is outside: x1 is exclusive
    assert cs.coverage(counts, (0, 0, 6, 3)) == 0.75
    assert cs.centered_box((10, 10), (4, 6)) == (2, 3, 8, 7)
    assert cs.box_around((9.0, 0.0), (10, 10), (4, 4)) == (6, 0, 10, 4)  # shifted inside
    # diagonal of 30x40 is 50: radius 5
    assert cs.hit_rate(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.1]]), (0, 0), (30, 40)) == pytest.approx(2 / 3)


def test_oracles_equal_brute_force():
    rng = np.random.default_rng(3)
    fixations = np.concatenate([rng.normal((30, 12), 4, (40, 2)), rng.uniform(0, 39, (20, 2))])
    counts = cs.fixation_counts(fixations, (30, 40))
    for box_hw in ((30, 30), (10, 40), (12, 7)):
        box = cs.oracle_box(counts, box_hw)
        assert cs.coverage(counts, box) == brute_window_sums(counts, *box_hw).max() / counts.sum()
    brute = max(cs.hit_rate(fixations, (x, y), (30, 40)) for y in range(0, 30, 2) for x in range(0, 40, 2))
    assert cs.oracle_hit_rate(fixations, (30, 40), step=2) == brute

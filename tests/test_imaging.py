"""fastsal_tf.imaging: the shared image conventions (centred Gaussian, map normalisation, placement crop)."""

import numpy as np
import pytest

from fastsal_tf.imaging import Placement, centered_gaussian, normalize_map, placement


def test_centered_gaussian_is_the_normalised_2d_formula_in_either_dtype():
    height, width = 30, 45
    y = (np.arange(height) - (height - 1) / 2) / (0.25 * height)  # pixel centres i + 0.5 around H / 2
    x = (np.arange(width) - (width - 1) / 2) / (0.25 * width)
    direct = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    np.testing.assert_allclose(centered_gaussian((height, width)), direct / direct.sum(), rtol=1e-12)
    single = centered_gaussian((height, width), dtype=np.float32)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, direct / direct.sum(), rtol=1e-6)


def test_normalize_map_sums_to_one_and_refuses_an_all_zero_map():
    np.testing.assert_allclose(normalize_map(np.array([[1.0, 3.0], [0.0, 4.0]])), [[0.125, 0.375], [0.0, 0.5]])
    with pytest.raises(ValueError, match="all-zero"):
        normalize_map(np.zeros((3, 3)))


def test_crop_takes_the_letterboxed_content_back():
    place = placement((100, 200), (64, 64), "letterbox")  # 32×64 content, 16 rows of padding above
    assert place == Placement((32, 64), (16, 0))
    frame = np.zeros((64, 64))
    frame[16:48] = 1.0
    assert place.crop(frame).shape == (32, 64) and place.crop(frame).min() == 1.0

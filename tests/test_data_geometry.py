"""Resize policies and the inverse mapping the predict command uses."""

import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf.data.geometry import Placement, letterbox_params, resize_image, unletterbox


@pytest.mark.parametrize("src_hw, dst_hw, placement", [
    ((600, 800), (192, 256), Placement((192, 256), (0, 0))),
    ((1024, 768), (192, 256), Placement((192, 144), (0, 56))),
    ((1080, 1920), (192, 256), Placement((144, 256), (24, 0))),
    ((10, 1000), (192, 256), Placement((3, 256), (94, 0))),
])
def test_letterbox_params(src_hw, dst_hw, placement):
    assert letterbox_params(src_hw, dst_hw) == placement
    assert letterbox_params(src_hw, dst_hw, "stretch") == Placement(dst_hw, (0, 0))


@pytest.mark.parametrize("policy", ["stretch", "letterbox"])
def test_unletterbox_inverts_resize_image(policy):
    y, x = np.mgrid[0:48, 0:96]
    image = np.stack([x * 2.0, y * 4.0, np.full_like(x, 50.0)], axis=-1)
    network = resize_image(image, (32, 32), policy).numpy()
    params = letterbox_params((48, 96), (32, 32), policy)
    restored = unletterbox(network, params, (48, 96))
    assert restored.shape == (48, 96, 3)
    np.testing.assert_allclose(restored[4:-4, 4:-4], image[4:-4, 4:-4], atol=1.0)  # smooth image: only blur
    peak = np.zeros((32, 32))
    (top, left), (height, width) = params.offset_yx, params.content_hw
    peak[top + height // 2, left + width // 2] = 1
    restored_peak = unletterbox(peak, params, (48, 96))
    assert restored_peak.shape == (48, 96)
    row, col = np.unravel_index(np.argmax(restored_peak), restored_peak.shape)
    assert abs(row - 23.5) <= 1.5 and abs(col - 47.5) <= 1.5


def test_resize_image_inside_tf_function_and_bad_policy():
    function = tf.function(lambda im: resize_image(im, (8, 8), "letterbox"))
    out = function(tf.ones((4, 16, 3), tf.uint8) * 200).numpy()
    assert out.shape == (8, 8, 3) and out[0, 0, 0] == 0 and out[4, 4, 0] == pytest.approx(200)
    with pytest.raises(ValueError, match="resize policy"):
        letterbox_params((4, 4), (8, 8), "crop")

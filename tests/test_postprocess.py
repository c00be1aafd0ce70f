"""fastsal_tf.predict.postprocess against independent definitions: the map back to the image size (PIL's
bilinear convention written out in float64 here), the display map, and the overlay blend (per pixel, written
out in float here) — including after the JPEG encode `fastsal predict` writes overlays with."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fastsal_tf.imaging import placement
from fastsal_tf.predict import postprocess


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) float64 weights of a bilinear resize along one axis as PIL computes it: output pixel x
    has its centre at (x + 0.5)·n_in/n_out in input pixels; the triangle kernel is widened by the scale when
    shrinking (antialiasing); weights are normalised to sum to 1 (so the border renormalises)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    distance = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.clip(1 - np.abs(distance), 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def expected_map(net: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    up = bilinear_matrix(hw[0], net.shape[0]) @ net.astype(np.float64) @ bilinear_matrix(hw[1], net.shape[1]).T
    return up / up.sum()


@pytest.mark.parametrize("hw", [(480, 640), (300, 90), (192, 256), (100, 700)])
def test_map_back_is_the_bilinear_resize_renormalised(hw):
    rng = np.random.default_rng(hw[0])
    net = (rng.random((192, 256)) ** 6).astype(np.float32)
    net /= net.sum()
    kept = net.copy()
    prob = postprocess.probability_to_output(net, placement(hw, (192, 256)), hw)
    assert prob.shape == hw and prob.dtype == np.float32 and prob.flags.writeable
    assert np.array_equal(net, kept)  # the network map is not written to
    reference = expected_map(net, hw)
    np.testing.assert_allclose(prob, reference, rtol=2e-5, atol=1e-6 * reference.max())
    assert abs(prob.sum(dtype=np.float64) - 1) < 1e-5
    # the display map is p·255/max p rounded: within one level of the float64 reference's (float32 rounding)
    shown = postprocess.display_map(prob).astype(int)
    assert np.abs(shown - np.floor(reference * 255 / reference.max() + 0.5)).max() <= 1
    assert shown.max() == 255


def test_map_back_clamps_negative_values():
    net = np.full((192, 256), 1 / (192 * 256), np.float32)
    net[:96] = -1.0  # not a probability: the clamp zeroes it before renormalising
    prob = postprocess.probability_to_output(net, placement((192, 256), (192, 256)), (192, 256))
    assert prob[:96].max() == 0 and np.allclose(prob[96:], 1 / (96 * 256))


def float_overlay(image: np.ndarray, display: np.ndarray, colormap: str, alpha: float) -> np.ndarray:
    """The blend by its definition, in float64: colour c(v) with opacity o(v) = round(255·alpha·sqrt(v/255))/255
    over the image."""
    colour = postprocess.colormap_lut(colormap).astype(np.float64)[display]
    opacity = np.round(255 * alpha * np.sqrt(display / 255.0))[..., None] / 255
    return image * (1 - opacity) + colour * opacity


def level_grid(height: int = 48, width: int = 64) -> np.ndarray:
    """A display map holding every level 0…255 several times."""
    return (np.arange(height * width) % 256).reshape(height, width).astype(np.uint8)


@pytest.mark.parametrize("colormap", postprocess.COLORMAPS)
@pytest.mark.parametrize("alpha", [0.0, 0.35, postprocess.DEFAULT_ALPHA, 1.0])
def test_overlay_is_the_per_pixel_blend(colormap, alpha):
    rng = np.random.default_rng(7)
    display = level_grid()
    image = rng.integers(0, 256, (*display.shape, 3), dtype=np.uint8)
    source = Image.fromarray(image)
    blended = postprocess.overlay(source, display, colormap, alpha)
    assert blended.mode == "RGB" and blended.size == source.size
    assert np.array_equal(np.asarray(source), image)  # the image itself is left as it was
    got = np.asarray(blended).astype(np.float64)
    assert np.abs(got - float_overlay(image, display, colormap, alpha)).max() <= 1.0
    if alpha == 0:
        assert np.array_equal(got, image)
    if alpha == 1:  # the peak level is the colour itself
        peak = display == 255
        assert np.array_equal(got[peak], postprocess.colormap_lut(colormap)[255][None].repeat(peak.sum(), 0))


def test_overlay_of_a_gray_image_and_an_array():
    display = level_grid(30, 40)
    gray = np.random.default_rng(3).integers(0, 256, display.shape, dtype=np.uint8)
    from_pil = np.asarray(postprocess.overlay(Image.fromarray(gray), display)).astype(np.float64)
    from_array = np.asarray(postprocess.overlay(np.repeat(gray[..., None], 3, axis=2), display))
    assert np.array_equal(from_pil, from_array)
    expected = float_overlay(np.repeat(gray[..., None], 3, axis=2), display, "jet", postprocess.DEFAULT_ALPHA)
    assert np.abs(from_pil - expected).max() <= 1.0


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_overlay_jpeg_decodes_close_to_the_float_blend():
    """What `fastsal predict` writes: the JPEG of the overlay decodes within encoder rounding of the JPEG of the
    exact float blend (both quality 90), on a photo-like image and a smooth saliency map."""
    yy, xx = np.mgrid[0:240, 0:320]
    image = np.stack([(xx * 0.8) % 256, (yy * 1.1) % 256, ((xx + yy) * 0.4) % 256], axis=2).astype(np.uint8)
    prob = np.exp(-((yy - 100) ** 2 + (xx - 200) ** 2) / (2 * 40.0 ** 2))
    display = postprocess.display_map(prob)
    ours = decode(postprocess.encode_jpeg(postprocess.overlay(image, display)))
    exact = float_overlay(image, display, "jet", postprocess.DEFAULT_ALPHA)
    reference = decode(postprocess.encode_jpeg(np.round(exact).astype(np.uint8)))
    assert np.abs(ours - reference).max() <= 3


def test_overlay_refuses_a_size_mismatch_and_a_bad_alpha():
    image = Image.new("RGB", (40, 30))
    with pytest.raises(ValueError, match="differ in size"):
        postprocess.overlay(image, np.zeros((40, 30), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        postprocess.overlay(image, np.zeros((30, 40), np.uint8), alpha=1.5)

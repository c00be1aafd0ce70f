import keras
import numpy as np
import pytest

from fastsal_tf.models import (TF_NATIVE, TORCH_COMPATIBLE, build_fastsal, build_hint_model, count_conv_macs,
                               count_parameters, describe)
from fastsal_tf.models.layers import Normalize, PixelShuffle, PixelSoftmax, UpsampleAlignCorners


def torch_pixel_shuffle(x, r):
    """PyTorch nn.PixelShuffle written from its definition, on NHWC numpy:
    out[n, r·h+i, r·w+j, c] = in[n, h, w, c·r² + i·r + j]."""
    n, h, w, c = x.shape
    out = np.zeros((n, h * r, w * r, c // (r * r)), x.dtype)
    for ch in range(c // (r * r)):
        for i in range(r):
            for j in range(r):
                out[:, i::r, j::r, ch] = x[:, :, :, ch * r * r + i * r + j]
    return out


def align_corners_resize(x, factor):
    """Bilinear resize with align_corners=True from its definition: output pixel o samples input
    coordinate o·(in−1)/(out−1)."""
    def axis_weights(size_in):
        size_out = size_in * factor
        coords = np.arange(size_out) * (size_in - 1) / (size_out - 1)
        m = np.zeros((size_out, size_in))
        lo = np.floor(coords).astype(int)
        hi = np.minimum(lo + 1, size_in - 1)
        frac = coords - lo
        m[np.arange(size_out), lo] += 1 - frac
        m[np.arange(size_out), hi] += frac
        return m
    wh, ww = axis_weights(x.shape[1]), axis_weights(x.shape[2])
    return np.einsum("oh,nhwc,pw->nopc", wh, x, ww)


@pytest.mark.parametrize("variant,params,buffers,macs", [("A", 3_646_715, 40_912, 638.3e6),
                                                           ("C", 2_574_049, 34_112, 616.6e6)])
def test_sizes_match_the_authors_network(variant, params, buffers, macs):
    model = build_fastsal(variant, **TORCH_COMPATIBLE)
    assert count_parameters(model) == params
    assert count_parameters(model, trainable=False) == buffers
    assert abs(count_conv_macs(model) - macs) / macs < 0.02


def test_hint_model_outputs_four_groups():
    model = build_hint_model((64, 96, 3))
    outputs = model(np.zeros((1, 64, 96, 3), np.float32))
    shapes = [tuple(outputs[f"hint_{i}"].shape) for i in range(4)]
    assert shapes == [(1, 32, 48, 128), (1, 16, 24, 256), (1, 8, 12, 512), (1, 4, 6, 512)]


@pytest.mark.parametrize("variant", ["A", "C"])
@pytest.mark.parametrize("shape", [(64, 96, 3), (96, 32, 3)])
def test_heads_shapes_and_semantics(variant, shape):
    model = build_fastsal(variant, shape)
    image = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype(np.float32)
    out = {k: np.asarray(v) for k, v in model(image).items()}
    for key in ("logits", "map", "prob"):
        assert out[key].shape == (2, shape[0], shape[1], 1)
    np.testing.assert_allclose(out["map"], 1 / (1 + np.exp(-out["logits"])), atol=1e-6)
    np.testing.assert_allclose(out["prob"].sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    flat = out["logits"].reshape(2, -1)
    expected = np.exp(flat - flat.max(1, keepdims=True))
    np.testing.assert_allclose(out["prob"].reshape(2, -1), expected / expected.sum(1, keepdims=True), atol=1e-7)


def test_dynamic_input_size():
    model = build_fastsal("A", (None, None, 3), heads=("map",))
    assert model(np.zeros((1, 64, 128, 3), np.float32))["map"].shape == (1, 64, 128, 1)
    assert model(np.zeros((1, 96, 32, 3), np.float32))["map"].shape == (1, 96, 32, 1)


@pytest.mark.parametrize("shape", [(100, 256, 3), (192, 250, 3), (192, 256, 1), (192, 256)])
def test_rejects_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input"):
        build_fastsal("A", shape)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        build_fastsal("B")
    with pytest.raises(ValueError, match="heads"):
        build_fastsal("A", heads=("saliency",))
    with pytest.raises(ValueError, match="normalization"):
        build_fastsal("A", normalization="zero_one")
    with pytest.raises(ValueError, match="padding"):
        build_fastsal("A", padding="reflect")


def test_pixel_shuffle_orders():
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 12)).astype(np.float32)
    np.testing.assert_array_equal(PixelShuffle(2, "CRD")(x), torch_pixel_shuffle(x, 2))
    dcr = np.asarray(PixelShuffle(2, "DCR")(x))
    assert dcr.shape == (2, 6, 10, 3)
    np.testing.assert_array_equal(dcr[:, 1::2, 0::2, 1], x[..., 2 * 3 + 1])  # (i·2 + j)·C + c


def test_pixel_shuffle_of_concat_is_concat_of_pixel_shuffles():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(1, 4, 4, 8)), rng.normal(size=(1, 4, 4, 12))
    whole = torch_pixel_shuffle(np.concatenate([a, b], -1), 2)
    np.testing.assert_allclose(whole, np.concatenate([torch_pixel_shuffle(a, 2), torch_pixel_shuffle(b, 2)], -1))


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_upsample_align_corners(factor):
    x = np.random.default_rng(3).normal(size=(1, 3, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(UpsampleAlignCorners(factor)(x), align_corners_resize(x, factor), atol=1e-5)


def test_normalize_conventions():
    x = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    np.testing.assert_allclose(Normalize("minus_one_one")(x), [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)
    imagenet = np.asarray(Normalize("imagenet")(x))[0, 0, 0]
    expected = (x[0, 0, 0] / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(imagenet, expected, rtol=1e-5)
    np.testing.assert_array_equal(Normalize("none")(x), x)


def test_pixel_softmax_sums_to_one_for_large_logits():
    x = np.full((1, 8, 8, 1), 80.0, np.float32)
    x[0, 3, 3, 0] = 100.0
    out = np.asarray(PixelSoftmax()(x))
    assert np.isfinite(out).all() and abs(out.sum() - 1) < 1e-6 and out[0, 3, 3, 0] > 0.99


def test_describe_reads_back_settings():
    assert describe(build_fastsal("C", (64, 64, 3), **TORCH_COMPATIBLE)) == {
        "name": "fastsal_C", "variant": "C", "input_shape": (64, 64, 3), "normalization": "imagenet",
        "padding": "torch", "bn_epsilon": 1e-5, "pixel_shuffle": "CRD", "outputs": ["logits", "map", "prob"]}
    info = describe(build_fastsal("A", (64, 64, 3), **TF_NATIVE))
    assert (info["padding"], info["pixel_shuffle"], info["normalization"]) == ("same", "DCR", "minus_one_one")


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0, 0.1, w.shape)
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value.astype(np.float32))


@pytest.mark.parametrize("build", [
    lambda: build_fastsal("A", (64, 64, 3), **TORCH_COMPATIBLE),
    lambda: build_fastsal("C", (64, 64, 3), **TORCH_COMPATIBLE),
    lambda: build_fastsal("A", (64, 64, 3), **TF_NATIVE),
    lambda: build_fastsal("C", (64, 64, 3), **TF_NATIVE),
    lambda: build_hint_model((64, 64, 3)),
], ids=["A-torch", "C-torch", "A-tf", "C-tf", "hint"])
def test_keras_file_round_trip_is_bit_identical(build, tmp_path):
    model = build()
    randomize(model, 4)
    image = np.random.default_rng(5).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    before = model.predict(image, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = loaded.predict(image, verbose=0)
    assert describe(loaded) == describe(model)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])

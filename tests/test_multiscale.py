import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf.models import build_fastsal, rebuild
from fastsal_tf.models.multiscale import ProbabilityMean, build_multiscale, multiscale_sizes

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL, LARGE = (64, 96), (96, 128)


def bilinear_resize(values, out_hw):
    """(N, h, w, 1) → (N, H, W, 1) bilinear with half-pixel centres, written from its definition: output
    pixel o samples input coordinate (o + ½)·in/out − ½, clamped to the edge pixels."""
    def axis_weights(size_in, size_out):
        coords = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        lo = np.floor(coords).astype(int)
        hi = np.minimum(lo + 1, size_in - 1)
        m = np.zeros((size_out, size_in))
        m[np.arange(size_out), lo] += 1 - (coords - lo)
        m[np.arange(size_out), hi] += coords - lo
        return m
    wh, ww = axis_weights(values.shape[1], out_hw[0]), axis_weights(values.shape[2], out_hw[1])
    return np.einsum("oh,nhwc,pw->nopc", wh, values.astype(np.float64), ww)


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(3)
    model = build_fastsal("A", (*SMALL, 3))
    # Non-trivial BatchNorm statistics, so a copy that updated them while called would show.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, variance = layer.moving_mean, layer.moving_variance
            mean.assign(np.random.RandomState(0).normal(0, 0.1, mean.shape))
            variance.assign(np.random.RandomState(1).uniform(0.5, 2.0, variance.shape))
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(7).uniform(0, 255, (2, *LARGE, 3)).astype(np.float32)


def test_one_size_is_the_model_itself(network, images):
    small_images = images[:, :SMALL[0], :SMALL[1]]
    multi = build_multiscale(network, [SMALL])
    expected = network(small_images, training=False)["prob"].numpy()
    np.testing.assert_allclose(multi(small_images)["prob"].numpy(), expected, rtol=1e-5, atol=1e-9)


def test_two_sizes_average_the_resized_renormalised_maps(network, images):
    multi = build_multiscale(network, [SMALL, LARGE])
    assert multi.input_shape == (None, *LARGE, 3)
    got = multi(images)["prob"].numpy()
    small_input = tf.image.resize(images, SMALL, method="bilinear", antialias=True).numpy()
    small_prob = network(small_input, training=False)["prob"].numpy()
    large_prob = rebuild(network, (*LARGE, 3))(images, training=False)["prob"].numpy()
    upsampled = bilinear_resize(small_prob, LARGE)
    expected = (upsampled / upsampled.sum(axis=(1, 2, 3), keepdims=True) + large_prob) / 2
    assert got.shape == (2, *LARGE, 1)
    np.testing.assert_allclose(got.sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)
    # The two passes differ, so the mean is neither of them.
    small_part = upsampled / upsampled.sum(axis=(1, 2, 3), keepdims=True)
    assert np.abs(small_part - large_prob).max() > 10 * np.abs(got - expected).max()


def test_flip_averages_each_size_with_its_mirrored_pass(network, images):
    small_images = images[:, :SMALL[0], :SMALL[1]]
    got = build_multiscale(network, [SMALL], flip=True)(small_images)["prob"].numpy()
    plain = network(small_images, training=False)["prob"].numpy()
    mirrored = network(small_images[:, :, ::-1], training=False)["prob"].numpy()[:, :, ::-1]
    np.testing.assert_allclose(got, (plain + mirrored) / 2, rtol=1e-5, atol=1e-9)
    assert np.abs(plain - mirrored).max() > 10 * np.abs(got - (plain + mirrored) / 2).max()


def test_calling_leaves_the_weights_and_a_saved_copy_loads_identical(network, images, tmp_path):
    multi = build_multiscale(network, [SMALL, LARGE])
    first = multi(images)["prob"].numpy()
    multi(images)
    copy = multi.get_layer("fastsal_A")  # one copy of the weights serves both sizes
    assert multi.count_params() == network.count_params()
    for layer in copy.layers:
        for mine, source in zip(layer.get_weights(), network.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(mine, source)
    path = tmp_path / "multi.keras"
    multi.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_array_equal(loaded(images)["prob"].numpy(), first)


@pytest.mark.parametrize("own, second", [((192, 256), (288, 384)), ((288, 384), (416, 576)), ((64, 96), (96, 128)),
                                          ((32, 32), (64, 64))])
def test_second_size_is_one_and_a_half_times_on_the_32_grid(own, second):
    assert multiscale_sizes(own) == (own, second)


def test_default_sizes_are_the_model_own_size_and_one_and_a_half_times_it(network, images):
    multi = build_multiscale(network)  # built at SMALL = 64x96 → 64x96 and 96x128 (= LARGE)
    assert multi.input_shape == (None, *LARGE, 3)
    np.testing.assert_array_equal(multi(images)["prob"].numpy(),
                                  build_multiscale(network, [SMALL, LARGE])(images)["prob"].numpy())


@pytest.mark.parametrize("sizes", [[], [SMALL, SMALL], [(64, 90)], [(0, 64)]])
def test_rejects_bad_sizes(network, sizes):
    with pytest.raises(ValueError):
        build_multiscale(network, sizes)


def test_rejects_a_model_that_is_no_fastsal():
    inputs = keras.Input((32, 32, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    with pytest.raises(ValueError, match="not a FastSal model"):
        build_multiscale(plain, [(32, 32)])


def test_probability_mean_of_equal_maps_is_that_map():
    values = np.random.RandomState(0).uniform(0.1, 1, (1, 8, 12, 1)).astype(np.float32)
    values /= values.sum()
    np.testing.assert_allclose(ProbabilityMean((8, 12))([values, values]).numpy(), values, rtol=1e-6)


def test_program_names_a_bad_size_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "training" / "multiscale_teacher.py"), "--model=default",
                             f"--out={tmp_path / 'm.keras'}", "--sizes=192x256,288x380"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "multiples of 32" in result.stderr and "288, 380" in result.stderr
    assert not (tmp_path / "m.keras").exists()


PHOTO = ROOT.parent / "shared" / "data" / "osie" / "data" / "stimuli" / "1010.jpg"
needs_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/data/osie is not here")


@pytest.mark.slow
@needs_photo
def test_load_model_multiscale_is_the_mean_of_the_two_sizes():
    """For the shipped 192x256 FastSal-A ("fast"): its maps at 192x256 and 288x384, averaged."""
    from PIL import Image

    from fastsal_tf.api import load_model
    from fastsal_tf.predict.predictor import SaliencyPredictor
    from fastsal_tf.runtime.backends import KerasBackend

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    multi = load_model("fast", multiscale=True)
    assert multi.input_size == (288, 384)
    got = multi.predict_map(rgb)
    single = load_model("fast-keras")
    at_192 = single.predict_map(rgb)
    at_288 = SaliencyPredictor(KerasBackend(rebuild(single.backend.model, (288, 384, 3)))).predict_map(rgb)
    expected = (at_192 + at_288) / 2
    assert got.shape == rgb.shape[:2]
    np.testing.assert_allclose(got.sum(), 1.0, atol=1e-6)
    # The 192x256 pass sees the image resized twice (to 288x384 by the predictor, then in the model), the
    # reference once: the maps agree closely, and far more closely than either size alone.
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.998
    assert np.corrcoef(at_192.ravel(), at_288.ravel())[0, 1] < 0.95


@pytest.mark.slow
@needs_photo
def test_load_model_flip_is_the_mean_with_the_mirrored_photo():
    from PIL import Image

    from fastsal_tf.api import load_model

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    flipped = load_model("fast", flip=True)
    assert flipped.input_size == (192, 256) and "flip-averaged" in flipped.describe()
    single = load_model("fast-keras")
    prepared = single.prepare(rgb)  # the stretched network frame, mirrored as a whole
    plain = single.infer([prepared])[0]
    mirrored = single.backend.run(np.ascontiguousarray(prepared.net_input[None, :, ::-1]))[0, :, ::-1]
    expected = single.finish(prepared, (plain + mirrored) / 2)
    got = flipped.predict_map(rgb)
    np.testing.assert_allclose(got.sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())
    assert np.corrcoef(got.ravel(), single.finish(prepared, plain).ravel())[0, 1] < 0.999


def test_multiscale_refuses_what_it_cannot_run(tmp_path):
    from fastsal_tf.api import load_model

    int8 = ROOT / "fastsal_tf" / "assets" / "fastsal_a_int8.tflite"
    with pytest.raises(ValueError, match="fastsal_a_int8.tflite.*run a Keras FastSal"):
        load_model(str(int8), multiscale=True)
    with pytest.raises(ValueError, match="fastsal_a_352x480.keras.*run on the Keras backend, not 'litert'"):
        load_model("default", multiscale=True, backend="litert")
    with pytest.raises(ValueError, match="input_size does not apply"):
        load_model("default", multiscale=True, input_size=(288, 384))
    with pytest.raises(ValueError, match="input_size does not apply"):
        load_model("default", flip=True, input_size=(288, 384))
    with pytest.raises(ValueError, match="fastsal_a_int8.tflite.*run a Keras FastSal"):
        load_model(str(int8), flip=True)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="corrupt.keras"):
        load_model(str(corrupt), multiscale=True)
    with pytest.raises(ValueError, match="corrupt.keras"):
        load_model(str(corrupt), flip=True)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        load_model(str(tmp_path / "missing.keras"), flip=True)


def test_cli_names_size_with_multiscale(tmp_path, capsys):
    from fastsal_tf.cli import main

    image = tmp_path / "photo.png"
    keras.utils.save_img(image, np.full((48, 64, 3), 128, np.uint8))
    code = main(["predict", str(image), "--multiscale", "--size", "288x384", "--out", str(tmp_path / "out")])
    assert code == 2 and "--size does not apply with --multiscale" in capsys.readouterr().err
    code = main(["predict", str(image), "--flip", "--size", "288x384", "--out", str(tmp_path / "out")])
    assert code == 2 and "--size does not apply with --flip" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_flip_names_a_model_it_cannot_run(tmp_path, capsys):
    from fastsal_tf.cli import main

    image = tmp_path / "photo.png"
    keras.utils.save_img(image, np.full((48, 64, 3), 128, np.uint8))
    int8 = ROOT / "fastsal_tf" / "assets" / "fastsal_a_int8.tflite"
    code = main(["center", str(image), "--flip", "--model", str(int8)])
    err = capsys.readouterr().err
    assert code == 2 and "fastsal_a_int8.tflite" in err and "Keras FastSal" in err and "Traceback" not in err


@pytest.mark.slow  # a TensorFlow start-up in a subprocess; the default suite keeps the failure paths
def test_program_without_sizes_uses_and_names_the_default_two(network, tmp_path):
    source = tmp_path / "small.keras"
    network.save(source)
    result = subprocess.run([sys.executable, str(ROOT / "training" / "multiscale_teacher.py"), f"--model={source}",
                             f"--out={tmp_path / 'm.keras'}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "(64x96, 96x128)" in result.stdout and "Traceback" not in result.stderr
    assert keras.saving.load_model(tmp_path / "m.keras", compile=False).input_shape == (None, *LARGE, 3)


def test_program_names_a_corrupt_model_and_exits_2(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"")
    result = subprocess.run([sys.executable, str(ROOT / "training" / "multiscale_teacher.py"), f"--model={corrupt}",
                             f"--out={tmp_path / 'm.keras'}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "corrupt.keras" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.keras").exists()

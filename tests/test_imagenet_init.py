"""ImageNet initialisation of the backbone: Keras' MobileNetV2 weights file and LiteRT MobileNetV2 classifiers."""

import re
import warnings

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from keras.src.legacy.saving import legacy_h5_format
from PIL import Image

from fastsal_tf.models import build_fastsal
from fastsal_tf.models.backbone import build_backbone, mobilenet_v2_taps
from fastsal_tf.models.layers import Normalize
from fastsal_tf.weights.imagenet import (KERAS_WEIGHTS_FILE, backbone_layer_names, load_keras_imagenet,
                                         load_tflite_imagenet, tflite_normalization)

TFLITE_FILES = ("mobilenet_v2_1.0_224_quant.tflite", "tf2_mobilenet_v2_1.0_224_ptq.tflite")
TOP1 = {"cat.bmp": "Egyptian cat", "bird.bmp": "chickadee"}


def randomize_batch_norm(model, seed=0):
    """Non-trivial BatchNorm parameters and statistics (a fresh model has mean 0, variance 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])


def keras_tap_names(app):
    """The Keras application's layers whose outputs are our 18 taps."""
    names = {layer.name for layer in app.layers}
    blocks = [f"block_{i}_add" if f"block_{i}_add" in names else f"block_{i}_project_BN" for i in range(1, 17)]
    return ["expanded_conv_project_BN", *blocks, "out_relu"]


@pytest.fixture(scope="module")
def keras_app(tmp_path_factory):
    """A randomised keras.applications.MobileNetV2 (no top) and its weights saved with `save_weights`."""
    app = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
    randomize_batch_norm(app)
    path = tmp_path_factory.mktemp("keras") / "mobilenet_v2.weights.h5"
    app.save_weights(path)
    return app, path


def test_keras_weights_give_the_application_taps(keras_app):
    app, path = keras_app
    ours = build_backbone((224, 224, 3), padding="same", bn_epsilon=1e-3)
    assert load_keras_imagenet(ours, path) == path
    reference = keras.Model(app.input, [app.get_layer(name).output for name in keras_tap_names(app)])
    image = np.random.default_rng(1).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    expected, got = reference(image), ours(image)
    assert len(got) == 18
    for name, e, g in zip(keras_tap_names(app), expected, got):
        e, g = np.asarray(e), np.asarray(g)
        assert e.shape == g.shape, name
        assert np.max(np.abs(e - g)) <= 1e-5 * max(1.0, np.max(np.abs(e))), name


def test_keras_weights_from_the_cache_in_keras_legacy_format(keras_app, tmp_path, monkeypatch):
    app, _ = keras_app
    cached = tmp_path / "models" / KERAS_WEIGHTS_FILE
    cached.parent.mkdir()
    with h5py.File(cached, "w") as f:  # the format of Keras' published file
        legacy_h5_format.save_weights_to_hdf5_group(f, app)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    ours = build_backbone((224, 224, 3))
    assert load_keras_imagenet(ours) == cached
    for pair in backbone_layer_names():
        for name in pair:
            for w, v in zip(ours.get_layer(name).get_weights(), app.get_layer(name).get_weights()):
                np.testing.assert_array_equal(w, v)


def test_missing_keras_weights_raise_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    model = build_backbone((32, 32, 3))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "keras_home" / "models"))) as error:
        load_keras_imagenet(model)
    assert "no download" in str(error.value)
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        load_keras_imagenet(model, tmp_path / "nowhere.h5")


def test_keras_weights_need_the_backbone_layers(keras_app):
    _, path = keras_app
    tiny = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="Conv1")])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*has no layer 'bn_Conv1'"):
        load_keras_imagenet(tiny, path)


def imagenet_classifier(path, input_size=224):
    """Our backbone (TF padding, the file's normalisation) + global average pool + the file's classifier."""
    inputs = keras.Input((input_size, input_size, 3))
    x = Normalize(tflite_normalization(path), name="normalize")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(mobilenet_v2_taps(x, "same", 1e-3)[-1])
    model = keras.Model(inputs, keras.layers.Dense(1001, name="classifier")(pooled))
    loaded = load_tflite_imagenet(model, path)
    model.get_layer("classifier").set_weights([loaded["classifier_kernel"], loaded["classifier_bias"]])
    return model


def litert_logits(path, image):
    """The file's own dequantized classifier output (pre-softmax) for one RGB 0–255 image."""
    with warnings.catch_warnings():  # "preserve all tensors is for debugging": that is what it does here
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    pixels = np.round(image)[None]
    if detail["dtype"] == np.int8:
        pixels -= 128
    interpreter.set_tensor(detail["index"], pixels.astype(detail["dtype"]))
    interpreter.invoke()
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    logits = ops[-1]["outputs"][0]
    scale, zero_point = interpreter.get_tensor_details()[logits]["quantization"]
    value = interpreter.get_tensor(logits).astype(np.float64).reshape(-1)
    return (value - zero_point) * scale if scale else value


@pytest.mark.parametrize("filename", TFLITE_FILES)
def test_tflite_backbone_classifies_imagenet_photos(shared_dir, filename):
    weights = shared_dir / "weights"
    labels = (weights / "imagenet_labels.txt").read_text().splitlines()
    assert len(labels) == 1001
    model = imagenet_classifier(weights / filename)
    for image_name, label in TOP1.items():
        image = np.asarray(Image.open(weights / image_name).convert("RGB").resize((224, 224), Image.BILINEAR),
                           np.float32)
        ours = model.predict(image[None], verbose=0)[0]
        theirs = litert_logits(weights / filename, image)
        assert labels[int(np.argmax(ours))] == label
        assert labels[int(np.argmax(theirs))] == label
        assert np.corrcoef(ours, theirs)[0, 1] > 0.99


def test_tflite_normalization_and_fastsal_loading(shared_dir):
    weights = shared_dir / "weights"
    quant, ptq = (weights / name for name in TFLITE_FILES)
    assert tflite_normalization(quant) == "tflite_128"
    assert tflite_normalization(ptq) == "tflite_127"
    model = build_fastsal("C", (64, 64, 3), normalization="tflite_127")
    before = model.get_layer("Conv1").get_weights()[0]
    with pytest.raises(ValueError, match=re.escape(str(quant)) + ".*tflite_128"):
        load_tflite_imagenet(model, quant)
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], before)
    loaded = load_tflite_imagenet(model, ptq)
    assert loaded["normalization"] == "tflite_127"
    assert loaded["classifier_kernel"].shape == (1280, 1001) and loaded["classifier_bias"].shape == (1001,)
    gamma, _, mean, variance = model.get_layer("block_5_depthwise_BN").get_weights()
    np.testing.assert_array_equal(gamma, 1.0)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(variance + np.float32(1e-3), 1.0)


def test_tflite_that_is_not_mobilenet_v2(tmp_path):
    tiny = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(10)])
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny).convert())
    model = build_backbone((32, 32, 3))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a MobileNetV2"):
        load_tflite_imagenet(model, path)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(ValueError, match=re.escape(str(junk))):
        load_tflite_imagenet(model, junk)
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        load_tflite_imagenet(model, tmp_path / "missing.tflite")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_float_tflite_matches_the_interpreter(tmp_path, precision):
    """A float (or float16-weight) MobileNetV2 classifier converted from Keras: our logits equal LiteRT's."""
    app = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=1001,
                                          classifier_activation=None)
    randomize_batch_norm(app)
    converter = tf.lite.TFLiteConverter.from_keras_model(app)
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    path = tmp_path / f"mobilenet_v2_{precision}.tflite"
    path.write_bytes(converter.convert())
    assert tflite_normalization(path) == "minus_one_one"
    image = np.random.default_rng(2).uniform(0, 255, (96, 96, 3)).astype(np.float32)
    ours = imagenet_classifier(path, input_size=96).predict(image[None], verbose=0)[0]
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], (image[None] / 127.5 - 1).astype(np.float32))
    interpreter.invoke()
    theirs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    assert np.max(np.abs(ours - theirs)) <= 1e-5 * max(1.0, np.max(np.abs(theirs)))

"""ImageNet initialisation of the MobileNetV2 backbone, from (a) Keras' ImageNet weights file or (b) a
MobileNetV2 1.0 LiteRT classifier (.tflite: float, uint8 per-tensor or int8 per-channel).

Weights go into any model holding the backbone's Keras-named layers (`build_backbone`, `build_fastsal`,
`build_hint_model`); every layer and shape is checked before anything is assigned. The input normalisation
is a construction argument of the model, so build it with the one the weights imply: "minus_one_one" for
Keras' file (TF_NATIVE), `tflite_normalization(path)` for a .tflite file, e.g.

    model = build_fastsal("A", normalization=tflite_normalization(path))
    load_tflite_imagenet(model, path)

Both files describe TF's network: build with padding="same" (and bn_epsilon=1e-3 for Keras' file).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from fastsal_tf.models.backbone import INVERTED_RESIDUAL_SETTINGS
from fastsal_tf.models.layers import NORMALIZATIONS, Normalize

KERAS_WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + KERAS_WEIGHTS_FILE
# Assumed for float .tflite inputs (TF's MobileNetV2 classifiers take [-1, 1]).
FLOAT_TFLITE_NORMALIZATION = "minus_one_one"
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
CLASSIFIER_OPS = ("CONV_2D", "FULLY_CONNECTED")


def backbone_layer_names():
    """The 52 (convolution, BatchNorm) layer-name pairs of the backbone in graph order."""
    pairs = [("Conv1", "bn_Conv1"), ("expanded_conv_depthwise", "expanded_conv_depthwise_BN"),
             ("expanded_conv_project", "expanded_conv_project_BN")]
    blocks = sum(repeats for _, _, repeats, _ in INVERTED_RESIDUAL_SETTINGS)
    for i in range(1, blocks):
        pairs += [(f"block_{i}_{kind}", f"block_{i}_{kind}_BN") for kind in ("expand", "depthwise", "project")]
    return pairs + [("Conv_1", "Conv_1_bn")]


def _backbone_layers(model, source):
    """{name: layer} for the backbone's conv and BatchNorm layers of `model`."""
    found = {}
    for pair in backbone_layer_names():
        for name in pair:
            try:
                found[name] = model.get_layer(name)
            except ValueError:
                raise ValueError(f"{source}: model {model.name!r} has no layer {name!r}; "
                                 "it needs the fastsal_tf MobileNetV2 backbone") from None
    return found


def _assign(model, weights, source):
    """Sets {layer name: [arrays]} on `model` after checking every layer and shape (all or nothing)."""
    layers = _backbone_layers(model, source)
    for name, values in weights.items():
        expected = [tuple(w.shape) for w in layers[name].weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"{source}: layer {name!r} has weight shapes {expected}, the file gives {got}")
    for name, values in weights.items():
        layers[name].set_weights(values)


def keras_weights_candidates():
    """Where Keras caches `KERAS_WEIGHTS_FILE`: $KERAS_HOME/models, ~/.keras/models, /tmp/.keras/models."""
    homes = [os.environ["KERAS_HOME"]] if os.environ.get("KERAS_HOME") else []
    homes += [os.path.join("~", ".keras"), os.path.join("/tmp", ".keras")]
    return [Path(home).expanduser() / "models" / KERAS_WEIGHTS_FILE for home in homes]


def find_keras_weights(path=None):
    """The Keras ImageNet weights file: `path` if given, else the first cached copy. Never downloads."""
    candidates = [Path(path).expanduser()] if path is not None else keras_weights_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Keras MobileNetV2 ImageNet weights not found (looked for {', '.join(map(str, candidates))}); no "
        f"download is attempted: fetch {KERAS_WEIGHTS_URL} into {candidates[0].parent} or pass its path")


def load_keras_imagenet(model, path=None):
    """Copies Keras' MobileNetV2 ImageNet weights (include_top=False) into the backbone layers of `model` by
    name. `path`: the .h5 file, default the Keras cache. Returns the file used. The weights expect
    normalization "minus_one_one", padding="same", bn_epsilon=1e-3."""
    path = find_keras_weights(path)
    source = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
    try:
        source.load_weights(str(path))
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not Keras' MobileNetV2 1.0 no-top weights ({error})") from error
    weights = {name: source.get_layer(name).get_weights() for pair in backbone_layer_names() for name in pair}
    _assign(model, weights, path)
    return path


def _open_tflite(path):
    """(Path, Interpreter) of a .tflite file; FileNotFoundError / ValueError naming it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LiteRT model {path} does not exist")
    try:
        # No delegate: the graph stays as stored and constants are read straight from the file.
        return path, Interpreter(model_path=str(path),
                                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable LiteRT model ({error})") from error


def _input_normalization(interpreter, path):
    """The NORMALIZATIONS name equal to the input quantization (x − zero_point)·scale of the file."""
    inputs = interpreter.get_input_details()
    if len(inputs) != 1 or inputs[0]["shape"][-1] != 3:
        raise ValueError(f"{path}: expected one RGB image input, found {[tuple(d['shape']) for d in inputs]}")
    detail = inputs[0]
    if np.issubdtype(detail["dtype"], np.floating):
        return FLOAT_TFLITE_NORMALIZATION
    scale, zero_point = detail["quantization"]
    mean = zero_point + (128 if detail["dtype"] == np.int8 else 0)  # an int8 input holds pixel − 128
    for name, (means, stds) in NORMALIZATIONS.items():
        if np.allclose(means, mean, rtol=0, atol=1e-3) and np.allclose(np.multiply(stds, scale), 1, atol=1e-4):
            return name
    raise ValueError(f"{path}: input quantization (scale {scale}, zero point {zero_point}, "
                     f"{np.dtype(detail['dtype']).name}) matches no known normalisation")


def tflite_normalization(path):
    """The input normalisation a LiteRT classifier implies: uint8 input with scale 1/128, zero point 128 →
    "tflite_128"; 1/127.5, 127 → "tflite_127"; float input → "minus_one_one"."""
    path, interpreter = _open_tflite(path)
    return _input_normalization(interpreter, path)


class _Constants:
    """Dequantized float32 constants of a LiteRT graph."""

    def __init__(self, interpreter, ops, path):
        self.interpreter = interpreter
        self.tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
        self.producers = {out: op for op in ops for out in op["outputs"]}
        self.path = path

    def __call__(self, index):
        """Tensor `index` as (q − zero_point)·scale, per tensor or per channel along `quantized_dimension`;
        a DEQUANTIZE op (float16-weight files) is followed to its constant input."""
        producer = self.producers.get(index)
        if producer is not None:
            if producer["op_name"] != "DEQUANTIZE":
                raise ValueError(f"{self.path}: tensor {self.tensors[index]['name']!r} is not a constant")
            return self(producer["inputs"][0])
        try:
            value = self.interpreter.get_tensor(index).astype(np.float64)
        except ValueError as error:
            raise ValueError(f"{self.path}: tensor {self.tensors[index]['name']!r} is not a constant") from error
        quantization = self.tensors[index]["quantization_parameters"]
        scales, zero_points = quantization["scales"], quantization["zero_points"]
        if scales.size:
            shape = [1] * value.ndim
            if scales.size > 1:
                shape[quantization["quantized_dimension"]] = scales.size
            value = (value - zero_points.reshape(shape)) * scales.reshape(shape)
        return value.astype(np.float32)


def _weighted_ops(interpreter, path):
    """The 52 backbone convolution ops and the classifier op, in graph order."""
    ops = interpreter._get_ops_details()
    weighted = [op for op in ops if op["op_name"] in CONV_OPS + ("FULLY_CONNECTED",)]
    convs = len(backbone_layer_names())
    if len(weighted) != convs + 1 or any(op["op_name"] not in CONV_OPS for op in weighted[:convs]) \
            or weighted[-1]["op_name"] not in CLASSIFIER_OPS:
        raise ValueError(f"{path}: not a MobileNetV2 1.0 classifier: expected {convs} CONV_2D/DEPTHWISE_CONV_2D "
                         f"ops and a classifier, found {[op['op_name'] for op in weighted]}")
    return ops, weighted[:convs], weighted[-1]


def _conv_kernel(op, weight, layer, path):
    """TFLite CONV_2D OHWI → Keras HWIO; DEPTHWISE_CONV_2D 1HW(C·m) → Keras (H, W, C, m)."""
    expected = tuple(layer.kernel.shape)
    is_depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    if is_depthwise and op["op_name"] == "DEPTHWISE_CONV_2D":
        h, w, c, m = expected
        if weight.shape == (1, h, w, c * m):
            return weight.reshape(expected)
    elif not is_depthwise and op["op_name"] == "CONV_2D":
        kernel = weight.transpose(1, 2, 3, 0)
        if kernel.shape == expected:
            return kernel
    raise ValueError(f"{path}: op {op['index']} ({op['op_name']}, weights {weight.shape}) does not fit layer "
                     f"{layer.name!r} ({type(layer).__name__}, kernel {expected})")


def _bias(constant, op, channels):
    """The op's bias (its optional third input), zeros when absent."""
    inputs = op["inputs"]
    return constant(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else np.zeros(channels, np.float32)


def load_tflite_imagenet(model, path):
    """Sets the backbone of `model` from a MobileNetV2 1.0 LiteRT classifier.

    The file's BatchNorm is folded into its convolutions: each conv gets the folded kernel and its BatchNorm
    becomes identity plus bias (gamma 1, beta = folded bias, mean 0, variance 1 − epsilon). A `Normalize`
    layer in `model` must already use the file's normalisation (`tflite_normalization`).
    Returns {"normalization": str, "classifier_kernel": (1280, classes), "classifier_bias": (classes,)},
    the classifier applied to the global average of the last tap.
    """
    path, interpreter = _open_tflite(path)
    normalization = _input_normalization(interpreter, path)
    ops, convs, classifier = _weighted_ops(interpreter, path)
    for layer in model.layers:
        if isinstance(layer, Normalize) and layer.normalization != normalization:
            raise ValueError(f"{path}: the file implies normalization {normalization!r}, model {model.name!r} "
                             f"was built with {layer.normalization!r}")
    constant = _Constants(interpreter, ops, path)
    layers = _backbone_layers(model, path)
    weights = {}
    for op, (conv_name, bn_name) in zip(convs, backbone_layer_names()):
        kernel = _conv_kernel(op, constant(op["inputs"][1]), layers[conv_name], path)
        channels = layers[bn_name].gamma.shape[0]
        weights[conv_name] = [kernel]
        variance = np.full(channels, 1.0 - layers[bn_name].epsilon, np.float32)  # (x − 0)/√(var + ε) = x
        weights[bn_name] = [np.ones(channels, np.float32), _bias(constant, op, channels),
                            np.zeros(channels, np.float32), variance]
    classifier_kernel = constant(classifier["inputs"][1])
    features = layers["Conv_1"].kernel.shape[-1]
    if classifier_kernel.ndim not in (2, 4) or classifier_kernel.shape[1:-1] not in ((), (1, 1)) \
            or classifier_kernel.shape[-1] != features:
        raise ValueError(f"{path}: classifier weights {classifier_kernel.shape} are not a 1×1 map from {features} "
                         "features")
    classes = classifier_kernel.shape[0]
    classifier_bias = _bias(constant, classifier, classes)
    _assign(model, weights, path)
    return {"normalization": normalization,
            "classifier_kernel": classifier_kernel.reshape(classes, features).T.copy(),
            "classifier_bias": classifier_bias}

"""The one FastSal model builder, the hint-pretraining model, and model introspection (sizes, MACs)."""

from __future__ import annotations

import keras
from keras import layers

from fastsal_tf.models.backbone import mobilenet_v2_taps
from fastsal_tf.models.decoders import HINT_CHANNELS, adaptation, fastsal_a_decoder, fastsal_c_decoder, feature_groups
from fastsal_tf.models.layers import Normalize, PixelShuffle, PixelSoftmax

VARIANTS = ("A", "C")
HEADS = ("logits", "map", "prob")
DEFAULT_INPUT_SHAPE = (192, 256, 3)

# Settings that reproduce the authors' PyTorch network exactly (their checkpoints need them).
TORCH_COMPATIBLE = dict(padding="torch", bn_epsilon=1e-5, pixel_shuffle="CRD", normalization="imagenet")
# Settings of the weights we train ourselves (TF MobileNetV2 initialisation, fastest on device).
TF_NATIVE = dict(padding="same", bn_epsilon=1e-3, pixel_shuffle="DCR", normalization="minus_one_one")


def check_input_shape(input_shape):
    """(H, W, 3) with H and W divisible by 32 (or None for a size chosen at call time)."""
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
    for side in input_shape[:2]:
        if side is not None and (int(side) <= 0 or int(side) % 32):
            raise ValueError(f"input height and width must be positive multiples of 32, got {tuple(input_shape)}")
    return tuple(input_shape)


def encoder(input_shape, padding, bn_epsilon, pixel_shuffle, normalization):
    """Input (RGB 0–255) → normalisation → MobileNetV2 taps → the four feature groups."""
    inputs = keras.Input(check_input_shape(input_shape), name="image")
    x = Normalize(normalization, name="normalize")(inputs)
    taps = mobilenet_v2_taps(x, padding, bn_epsilon)
    return inputs, feature_groups(taps, pixel_shuffle)


def build_fastsal(variant="A", input_shape=DEFAULT_INPUT_SHAPE, padding="same", bn_epsilon=1e-3,
                  pixel_shuffle="DCR", normalization="minus_one_one", heads=HEADS):
    """FastSal-A or FastSal-C as a Keras functional model.

    Input "image": (N, H, W, 3) RGB in 0–255 (H, W multiples of 32). Outputs, a dict with the keys in
    `heads`: "logits" (N, H, W, 1) raw scores; "map" sigmoid(logits) in [0, 1] (paper eq. 2); "prob"
    softmax of the logits over all H·W pixels, each image summing to 1 (paper eq. 3).
    `padding`, `bn_epsilon`, `pixel_shuffle` and `normalization` are properties of the weights: use
    TORCH_COMPATIBLE for the authors' checkpoints and TF_NATIVE (the defaults) for our own.
    """
    variant = str(variant).upper()
    if variant not in VARIANTS:
        raise ValueError(f"variant must be 'A' or 'C', got {variant!r}")
    unknown = set(heads) - set(HEADS)
    if unknown or not heads:
        raise ValueError(f"heads must be a non-empty subset of {HEADS}, got {tuple(heads)}")
    inputs, groups = encoder(input_shape, padding, bn_epsilon, pixel_shuffle, normalization)
    if variant == "A":
        logits = fastsal_a_decoder(groups, pixel_shuffle, padding, bn_epsilon)
    else:
        logits = fastsal_c_decoder(groups, pixel_shuffle)
    available = {
        "logits": logits,
        "map": layers.Activation("sigmoid", dtype="float32", name="map")(logits) if "map" in heads else None,
        "prob": PixelSoftmax(name="prob", dtype="float32")(logits) if "prob" in heads else None,
    }
    outputs = {name: available[name] for name in HEADS if name in heads}
    return keras.Model(inputs, outputs, name=f"fastsal_{variant}")


def build_hint_model(input_shape=DEFAULT_INPUT_SHAPE, padding="same", bn_epsilon=1e-3, pixel_shuffle="DCR",
                     normalization="minus_one_one"):
    """Hint-loss pretraining model (paper eq. 1): backbone + feature groups + adaptation layers
    adapt_0..3 (1×1 conv + ReLU to 128, 256, 512, 512 channels at H/2, H/4, H/8, H/16).
    Output: dict "hint_0".."hint_3". Its layer names match FastSal-C's, so C inherits the head."""
    inputs, groups = encoder(input_shape, padding, bn_epsilon, pixel_shuffle, normalization)
    hints = adaptation(groups, HINT_CHANNELS)
    outputs = {f"hint_{i}": layers.Identity(name=f"hint_{i}", dtype="float32")(h) for i, h in enumerate(hints)}
    return keras.Model(inputs, outputs, name="fastsal_hint")


def describe(model):
    """The construction settings of a model built by this module, read back from its layers."""
    names = {layer.name for layer in model.layers}
    shuffle = next(layer for layer in model.layers if isinstance(layer, PixelShuffle))
    return {
        "name": model.name,
        "variant": model.name.rsplit("_", 1)[-1],
        "input_shape": tuple(model.input_shape[1:]),
        "normalization": model.get_layer("normalize").normalization,
        "padding": "torch" if "Conv1_pad" in names else "same",
        "bn_epsilon": float(model.get_layer("bn_Conv1").epsilon),
        "pixel_shuffle": shuffle.order,
        "outputs": list(model.output.keys()) if isinstance(model.output, dict) else None,
    }


def count_parameters(model, trainable=True):
    """Number of trainable (or non-trainable) scalars."""
    weights = model.trainable_weights if trainable else model.non_trainable_weights
    return int(sum(int(w.shape.num_elements()) for w in weights))


def count_conv_macs(model):
    """Multiply-accumulates of all convolutions for one image at the model's fixed input size."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            if isinstance(layer, layers.DepthwiseConv2D):
                total += h * w * c_out * kh * kw
            else:
                total += h * w * c_out * kh * kw * layer.input.shape[-1]
    return int(total)

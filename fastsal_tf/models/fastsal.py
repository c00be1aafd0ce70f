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


def default_resample(normalization: str) -> str:
    """The image resampling that goes with a normalisation: "lanczos" for the authors' weights (ImageNet
    mean/std; their predict script resizes with PIL LANCZOS), "bilinear" (antialiased) for ours."""
    return "lanczos" if normalization == "imagenet" else "bilinear"


@keras.saving.register_keras_serializable(package="fastsal")
class FastSal(keras.Model):
    """FastSal-A or FastSal-C: a Keras functional model that describes itself. Its config holds every
    construction setting (variant, input shape, padding, BatchNorm epsilon, pixel-shuffle order,
    normalisation, heads) and the image resampling its weights expect, so `FastSal.from_config(config)`
    rebuilds it (at another size: change "input_shape") and a saved `.keras` file loads as a FastSal
    (after `import fastsal_tf.models`, which registers it). Layers set to trainable=False (frozen_layers)
    stay frozen through a save and load."""

    def __init__(self, variant="A", input_shape=DEFAULT_INPUT_SHAPE, padding="same", bn_epsilon=1e-3,
                 pixel_shuffle="DCR", normalization="minus_one_one", heads=HEADS, resample=None, frozen_layers=(),
                 name=None, **kwargs):
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
        outputs = {head: available[head] for head in HEADS if head in heads}
        super().__init__(inputs, outputs, name=name or f"fastsal_{variant}", **kwargs)
        for layer_name in frozen_layers:  # e.g. the backbone BatchNorm layers a fine-tuning run froze
            self.get_layer(layer_name).trainable = False
        self.settings = {"variant": variant, "input_shape": tuple(input_shape), "padding": padding,
                         "bn_epsilon": float(bn_epsilon), "pixel_shuffle": pixel_shuffle,
                         "normalization": normalization, "heads": tuple(h for h in HEADS if h in heads),
                         "resample": resample or default_resample(normalization)}

    def get_config(self):
        frozen = [layer.name for layer in self.layers if not layer.trainable and layer.weights]
        return {"name": self.name, "trainable": self.trainable, **self.settings, "frozen_layers": frozen}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def build_fastsal(variant="A", input_shape=DEFAULT_INPUT_SHAPE, padding="same", bn_epsilon=1e-3,
                  pixel_shuffle="DCR", normalization="minus_one_one", heads=HEADS):
    """FastSal-A or FastSal-C (a `FastSal` functional model).

    Input "image": (N, H, W, 3) RGB in 0–255 (H, W multiples of 32). Outputs, a dict with the keys in
    `heads`: "logits" (N, H, W, 1) raw scores; "map" sigmoid(logits) in [0, 1] (paper eq. 2); "prob"
    softmax of the logits over all H·W pixels, each image summing to 1 (paper eq. 3).
    `padding`, `bn_epsilon`, `pixel_shuffle` and `normalization` are properties of the weights: use
    TORCH_COMPATIBLE for the authors' checkpoints and TF_NATIVE (the defaults) for our own.
    """
    return FastSal(variant, input_shape, padding, bn_epsilon, pixel_shuffle, normalization, heads)


def rebuild(model, input_shape=None, heads=None):
    """The FastSal `model` rebuilt from its settings (describe) at another input_shape (H, W, 3) and/or
    with other heads, its weights copied layer by layer. ValueError when it is not a FastSal model."""
    settings = describe(model)
    config = {key: settings[key] for key in ("variant", "padding", "bn_epsilon", "pixel_shuffle", "normalization")}
    rebuilt = FastSal(input_shape=tuple(input_shape or settings["input_shape"]),
                      heads=tuple(heads or settings["outputs"] or HEADS), resample=preprocessing_resample(model),
                      **config)
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def build_hint_model(input_shape=DEFAULT_INPUT_SHAPE, padding="same", bn_epsilon=1e-3, pixel_shuffle="DCR",
                     normalization="minus_one_one"):
    """Hint-loss pretraining model (paper eq. 1): backbone + feature groups + adaptation layers
    adapt_0..3 (1×1 conv + ReLU to 128, 256, 512, 512 channels at H/2, H/4, H/8, H/16).
    Output: dict "hint_0".."hint_3". Its layer names match FastSal-C's, so C inherits the head."""
    inputs, groups = encoder(input_shape, padding, bn_epsilon, pixel_shuffle, normalization)
    hints = adaptation(groups, HINT_CHANNELS)
    outputs = {f"hint_{i}": layers.Identity(name=f"hint_{i}", dtype="float32")(h) for i, h in enumerate(hints)}
    return keras.Model(inputs, outputs, name="fastsal_hint")


def _output_keys(model):
    return list(model.output.keys()) if isinstance(model.output, dict) else None


def describe(model):
    """The construction settings of a FastSal or hint model: from its config when it is a `FastSal`, else
    (a model saved before FastSal described itself, or the hint model) read back from its layers.
    ValueError when the model was not built by this module."""
    if isinstance(model, FastSal):
        outputs = _output_keys(model)
        settings = model.settings
        return {"name": model.name, "variant": settings["variant"], "input_shape": tuple(model.input_shape[1:]),
                "normalization": settings["normalization"], "padding": settings["padding"],
                "bn_epsilon": settings["bn_epsilon"], "pixel_shuffle": settings["pixel_shuffle"], "outputs": outputs}
    try:
        names = {layer.name for layer in model.layers}
        shuffle = next(layer for layer in model.layers if isinstance(layer, PixelShuffle))
        normalization = model.get_layer("normalize").normalization
        bn_epsilon = float(model.get_layer("bn_Conv1").epsilon)
        outputs = _output_keys(model)  # AttributeError for a model never called
    except (StopIteration, ValueError, AttributeError):
        raise ValueError(f"{model.name!r} is not a FastSal model (no FastSal config, pixel shuffle or "
                         "normalisation layer)") from None
    return {
        "name": model.name,
        "variant": model.name.rsplit("_", 1)[-1],
        "input_shape": tuple(model.input_shape[1:]),
        "normalization": normalization,
        "padding": "torch" if "Conv1_pad" in names else "same",
        "bn_epsilon": bn_epsilon,
        "pixel_shuffle": shuffle.order,
        "outputs": outputs,
    }


def preprocessing_resample(model) -> str:
    """The image resampling a FastSal model's weights expect ("bilinear" or "lanczos"): from its config, else
    from its normalisation (default_resample). ValueError when it is not a FastSal model."""
    if isinstance(model, FastSal):
        return model.settings["resample"]
    return default_resample(describe(model)["normalization"])


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

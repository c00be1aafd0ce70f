"""A multi-scale FastSal: one Keras model that runs a FastSal's weights at several input sizes and averages
their probability maps (test-time multi-scale inference, used as a distillation teacher).

Why: at its training size (192×256) the first shipped FastSal-A gives smooth maps; run at 288×384 its blobs
are a third smaller in image pixels and land on smaller things (faces in a crowd). The mean of the two maps
scores higher than either on fixation data (OSIE validation and EyeCrowd; docs/experiments.md has the numbers).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from fastsal_tf.models.fastsal import check_input_shape, describe, rebuild

MULTISCALE_FACTOR = 1.5  # the second pass's size relative to the network's own (multiscale_sizes)


@keras.saving.register_keras_serializable(package="fastsal")
class ProbabilityMean(keras.layers.Layer):
    """Probability maps (N, h_i, w_i, 1), each summing to 1 → their mean at `size` = (H, W): each map is
    resized bilinearly (no antialiasing) to (H, W), divided by its sum, then the maps are averaged; the
    result, (N, H, W, 1) float32, sums to 1 per image."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(int(v) for v in size)

    def call(self, maps):
        resized = []
        for values in maps:
            values = tf.cast(values, tf.float32)
            if tuple(values.shape[1:3]) != self.size:
                values = tf.image.resize(values, self.size, method="bilinear")
            resized.append(values / tf.reduce_sum(values, axis=(1, 2, 3), keepdims=True))
        return tf.add_n(resized) / float(len(resized))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], *self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="fastsal")
class HorizontalFlip(keras.layers.Layer):
    """(N, H, W, C) → the same mirrored left–right (always; for test-time flip averaging)."""

    def call(self, values):
        return keras.ops.flip(values, axis=2)


def own_size(model) -> tuple[int, int]:
    """A FastSal's input (height, width); 192×256 for a flexible-size model."""
    own = model.input_shape[1:3]
    return tuple(own) if all(own) else (192, 256)


def multiscale_sizes(input_hw) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two passes of a network built at input_hw = (height, width): its own size and MULTISCALE_FACTOR
    times it, each side rounded down to a multiple of 32 but at least 32 more than its own (192×256 →
    288×384; 352×480 → 512×704)."""
    height, width = (int(v) for v in input_hw)
    return (height, width), tuple(max(int(v * MULTISCALE_FACTOR) // 32 * 32, v + 32) for v in (height, width))


def build_multiscale(model, sizes=None, name: str | None = None, flip: bool = False) -> keras.Model:
    """A Keras model averaging the probability maps of the FastSal `model` run at each (height, width) in
    `sizes` (multiples of 32, at least one, no repeats; default: multiscale_sizes of own_size(model)).
    flip: test-time flip averaging, each size also run on the mirrored frame and its map mirrored back
    (2 passes per size, all maps weighted equally).

    Input "image": (N, H, W, 3) RGB 0–255 at the largest size (the one with the most pixels); each pass
    gets it resized (bilinear, antialiased) to its own size. Output {"prob": (N, H, W, 1)}: the passes'
    probability maps (pixel softmax of the logits) averaged by ProbabilityMean at (H, W), summing to 1.
    All passes call one frozen, flexible-size copy of `model` (fastsal.rebuild: its weights once).
    ValueError for bad sizes or a model that is no FastSal."""
    if sizes is None:
        sizes = multiscale_sizes(own_size(model))
    sizes = [tuple(int(v) for v in size) for size in sizes]
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must list at least one (height, width) and none twice, got {sizes}")
    for size in sizes:
        check_input_shape((*size, 3))
    largest = max(sizes, key=lambda size: size[0] * size[1])
    variant = describe(model)["variant"]
    network = rebuild(model, (None, None, 3), heads=("logits",))
    network.trainable = False  # else calling it would update its BatchNorm statistics
    inputs = keras.Input((*largest, 3), name="image")
    maps = []
    for height, width in sizes:
        frame = inputs
        if (height, width) != largest:
            frame = keras.layers.Resizing(height, width, interpolation="bilinear", antialias=True,
                                          name=f"resize_{height}x{width}")(inputs)
        logits = network(frame)["logits"]
        maps.append(keras.layers.Softmax(axis=(1, 2, 3), dtype="float32", name=f"prob_{height}x{width}")(logits))
        if flip:
            logits = network(HorizontalFlip(name=f"mirror_{height}x{width}")(frame))["logits"]
            mirrored = keras.layers.Softmax(axis=(1, 2, 3), dtype="float32", name=f"prob_{height}x{width}_mirrored")
            maps.append(HorizontalFlip(name=f"unmirror_{height}x{width}")(mirrored(logits)))
    prob = ProbabilityMean(largest, name="prob")(maps)
    return keras.Model(inputs, {"prob": prob}, name=name or f"fastsal_{variant}_multiscale")

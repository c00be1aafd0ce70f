"""Custom Keras layers of FastSal: in-model preprocessing, pixel shuffle, align-corners upsampling and
the pixel softmax, and the VGG preprocessing of hint teachers. All are registered so `.keras` files load without `custom_objects`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# Input normalisations: name → (mean, std) applied to RGB in 0–255, i.e. y = (x − mean) / std.
NORMALIZATIONS = {
    # torchvision / the authors' checkpoints: x/255 then ImageNet mean and std.
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    # Keras / TF MobileNetV2 weights: [-1, 1].
    "minus_one_one": ((127.5,) * 3, (127.5,) * 3),
    # LiteRT uint8 classifiers: the input quantisation of the file, (x − 128)/128 and (x − 127)/127.5.
    "tflite_128": ((128.0,) * 3, (128.0,) * 3),
    "tflite_127": ((127.0,) * 3, (127.5,) * 3),
    # The input is already normalised (test vectors, custom pipelines).
    "none": ((0.0,) * 3, (1.0,) * 3),
}
VGG_BGR_MEAN = (103.939, 116.779, 123.68)  # keras.applications.vgg16.preprocess_input ("caffe" mode)


@keras.saving.register_keras_serializable(package="fastsal")
class Normalize(keras.layers.Layer):
    """RGB 0–255 (N, H, W, 3) → (x − mean) / std per channel. `normalization` names the convention
    (a key of NORMALIZATIONS) and is kept in the saved model so callers always feed 0–255."""

    def __init__(self, normalization: str = "imagenet", **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {sorted(NORMALIZATIONS)}, got {normalization!r}")
        self.normalization = normalization
        mean, std = NORMALIZATIONS[normalization]
        self._scale = np.asarray([1.0 / s for s in std], dtype=np.float32)
        self._offset = np.asarray([-m / s for m, s in zip(mean, std)], dtype=np.float32)

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        if self.normalization == "none":
            return x
        return x * tf.constant(self._scale, self.compute_dtype) + tf.constant(self._offset, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "normalization": self.normalization}


def crd_to_dcr_permutation(channels: int, block_size: int = 2) -> np.ndarray:
    """Channel permutation p such that depth_to_space(x[..., p]) equals PyTorch's PixelShuffle(x).

    PixelShuffle (CRD) reads out[c, r·h+i, r·w+j] = in[c·r² + i·r + j]; depth_to_space (DCR) reads
    in[(i·r + j)·C + c]. So the DCR input channel k·C + c must hold the CRD channel c·r² + k.
    """
    r2 = block_size * block_size
    if channels % r2:
        raise ValueError(f"pixel shuffle needs a multiple of {r2} channels, got {channels}")
    out_channels = channels // r2
    k, c = np.meshgrid(np.arange(r2), np.arange(out_channels), indexing="ij")
    return (c * r2 + k).reshape(-1)


@keras.saving.register_keras_serializable(package="fastsal")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel upsampling (N, H, W, C·r²) → (N, r·H, r·W, C).

    order="DCR" is TF's depth_to_space (one op, used by weights we train); order="CRD" reproduces
    PyTorch's nn.PixelShuffle (needed for the authors' checkpoints) as a constant channel gather
    followed by depth_to_space.
    """

    def __init__(self, block_size: int = 2, order: str = "DCR", **kwargs):
        super().__init__(**kwargs)
        if order not in ("DCR", "CRD"):
            raise ValueError(f"order must be 'DCR' or 'CRD', got {order!r}")
        self.block_size = int(block_size)
        self.order = order

    def call(self, inputs):
        if self.order == "CRD":
            perm = crd_to_dcr_permutation(inputs.shape[-1], self.block_size)
            inputs = tf.gather(inputs, tf.constant(perm, tf.int32), axis=-1)
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.block_size
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size, "order": self.order}


@keras.saving.register_keras_serializable(package="fastsal")
class UpsampleAlignCorners(keras.layers.Layer):
    """Bilinear upsampling by an integer factor with align_corners=True (PyTorch's
    `F.interpolate(..., mode='bilinear', align_corners=True)`), (N, H, W, C) → (N, f·H, f·W, C).
    Lowers to LiteRT RESIZE_BILINEAR(align_corners=True)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        size = tf.shape(inputs)[1:3] * self.factor
        return tf.raw_ops.ResizeBilinear(images=inputs, size=size, align_corners=True, half_pixel_centers=False)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        f = self.factor
        return (n, None if h is None else h * f, None if w is None else w * f, c)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="fastsal")
class PixelSoftmax(keras.layers.Layer):
    """Softmax over all pixels of each image: logits (N, H, W, 1) → probability map (N, H, W, 1)
    summing to 1 per image (paper eq. 3). Computed in float32 even under mixed precision."""

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        flat = tf.reshape(x, (shape[0], -1))
        return tf.reshape(tf.nn.softmax(flat, axis=-1), shape)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="fastsal_tf")
class VGGPreprocess(keras.layers.Layer):
    """RGB 0–255 → BGR minus the ImageNet channel means (VGG16's "caffe" preprocessing; hint teachers,
    fastsal_tf.train.teachers). Registered as "fastsal_tf>VGGPreprocess", the name saved teachers carry."""

    def call(self, inputs):
        bgr = keras.ops.flip(keras.ops.cast(inputs, self.compute_dtype), axis=-1)
        return bgr - keras.ops.convert_to_tensor(VGG_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

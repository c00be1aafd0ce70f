"""Random augmentations that keep fixations aligned: the crop box and flip are sampled here and applied to
image, points and maps alike by the pipeline; photometric jitter touches the image only. Stateless: every
draw comes from an explicit seed, so a seeded pipeline is reproducible."""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Training augmentation.

    flip: mirror left–right with probability 1/2.
    crop_scale: (min, max) area of a random crop as a fraction of the image, or None for no crop.
    crop_ratio: (min, max) aspect jitter of the crop, relative to the aspect of the frame it is resized
        into (the network frame for "stretch", the image for "letterbox"); log-uniform.
    brightness: max brightness shift, fraction of full range. contrast, saturation: factors drawn from
        [1 − c, 1 + c]. hue: max hue shift (turns, ≤ 0.5). Zero disables each.
    """

    flip: bool = True
    crop_scale: tuple[float, float] | None = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.0

    def __post_init__(self):
        if self.crop_scale is not None and not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio}")
        if not (0 <= self.hue <= 0.5 and 0 <= self.brightness and 0 <= self.contrast <= 1
                and 0 <= self.saturation <= 1):
            raise ValueError("jitter amounts must be >= 0, contrast and saturation <= 1, hue <= 0.5")


def sample_box(seed: tf.Tensor, src_h, src_w, aspect, augmentation: Augmentation) -> tuple[tf.Tensor, ...]:
    """Random crop (y0, x0, h, w) int32 inside a src_h×src_w image; aspect = w/h of the frame it goes to."""
    if augmentation.crop_scale is None:
        return tf.constant(0), tf.constant(0), tf.cast(src_h, tf.int32), tf.cast(src_w, tf.int32)
    scale_seed, ratio_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    src_hf = tf.cast(src_h, tf.float32)
    src_wf = tf.cast(src_w, tf.float32)
    area = src_hf * src_wf * tf.random.stateless_uniform([], scale_seed, *augmentation.crop_scale)
    log_ratio = tf.random.stateless_uniform([], ratio_seed, math.log(augmentation.crop_ratio[0]),
                                            math.log(augmentation.crop_ratio[1]))
    crop_aspect = tf.cast(aspect, tf.float32) * tf.exp(log_ratio)
    w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * crop_aspect)), tf.int32), 1, tf.cast(src_w, tf.int32))
    h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / crop_aspect)), tf.int32), 1, tf.cast(src_h, tf.int32))
    y0 = tf.random.stateless_uniform([], y_seed, 0, tf.cast(src_h, tf.int32) - h + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([], x_seed, 0, tf.cast(src_w, tf.int32) - w + 1, dtype=tf.int32)
    return y0, x0, h, w


def sample_flip(seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """Bool scalar: mirror this example."""
    if not augmentation.flip:
        return tf.constant(False)
    return tf.random.stateless_uniform([], seed) < 0.5


def jitter(image: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """Photometric jitter of a float (H, W, 3) RGB image in 0–255; returns it clipped to 0–255."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    x = image / 255.0
    if augmentation.brightness:
        x = tf.image.stateless_random_brightness(x, augmentation.brightness, seeds[0])
    if augmentation.contrast:
        x = tf.image.stateless_random_contrast(x, 1 - augmentation.contrast, 1 + augmentation.contrast, seeds[1])
    if augmentation.saturation:
        x = tf.image.stateless_random_saturation(x, 1 - augmentation.saturation, 1 + augmentation.saturation,
                                                 seeds[2])
    if augmentation.hue:
        x = tf.image.stateless_random_hue(x, augmentation.hue, seeds[3])
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0

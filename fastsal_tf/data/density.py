"""Fixation maps and Gaussian densities at network resolution, in TensorFlow (inside tf.data).

Matches fastsal_tf.fixations (numpy) for the same points and sigma: points are rounded to the nearest pixel
(half to even), duplicates collapse, and the binary map is blurred with a Gaussian truncated at 4 sigma with
zeros outside the image. Fixations just outside a crop still add their blur inside it (a crop of the
density), but never a point of the binary map.
"""

from __future__ import annotations

import tensorflow as tf

TRUNCATE = 4.0


def transform_points(points: tf.Tensor, box, content_hw, offset_yx) -> tuple[tf.Tensor, tf.Tensor]:
    """Source (N, 2) (x, y) points → network-frame (x, y) float64 and a bool (N,) "inside the box" mask.

    box = (y0, x0, h, w): the source region (pixels) placed as content_hw at offset_yx.
    """
    points = tf.cast(points, tf.float64)
    y0, x0, h, w = (tf.cast(v, tf.float64) for v in box)
    content_h, content_w = (tf.cast(v, tf.float64) for v in content_hw)
    offset_y, offset_x = (tf.cast(v, tf.float64) for v in offset_yx)
    u = points[:, 0] + 0.5 - x0
    v = points[:, 1] + 0.5 - y0
    inside = (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    x = u * (content_w / w) + offset_x - 0.5
    y = v * (content_h / h) + offset_y - 0.5
    return tf.stack([x, y], axis=1), inside


def _gaussian_profiles(centres: tf.Tensor, size: int, sigma: tf.Tensor, radius: tf.Tensor) -> tf.Tensor:
    """(size, K) float32: column k is the Gaussian centred on pixel centres[k], truncated at radius."""
    distance = tf.range(size, dtype=tf.float32)[:, None] - tf.cast(centres, tf.float32)[None, :]
    weights = tf.exp(-0.5 * tf.square(distance / sigma))
    return tf.where(tf.abs(distance) <= tf.cast(radius, tf.float32), weights, 0.0)


def content_mask(dst_hw, content_hw, offset_yx, flip) -> tf.Tensor:
    """(dst_h, dst_w) float32: 1 on the image content (mirrored when flip), 0 on letterbox padding."""
    rows = tf.range(dst_hw[0])
    cols = tf.range(dst_hw[1])
    left = tf.where(flip, dst_hw[1] - offset_yx[1] - content_hw[1], offset_yx[1])
    row_in = (rows >= offset_yx[0]) & (rows < offset_yx[0] + content_hw[0])
    col_in = (cols >= left) & (cols < left + content_hw[1])
    return tf.cast(row_in[:, None] & col_in[None, :], tf.float32)


def fixations_and_density(points_net: tf.Tensor, inside: tf.Tensor, content_hw, offset_yx,
                          dst_hw: tuple[int, int], sigma_yx, flip) -> tuple[tf.Tensor, tf.Tensor]:
    """Binary fixation map and unnormalised density, both (dst_h, dst_w) float32.

    points_net, inside: from transform_points. sigma_yx: Gaussian sigma in network pixels per axis (> 0).
    flip: a bool tensor, mirror left–right. Only inside points mark the binary map (clipped into the
    content); all points within reach add to the density; both are zero outside the content.
    """
    dst_h, dst_w = dst_hw
    sigma_y, sigma_x = (tf.cast(s, tf.float32) for s in sigma_yx)
    radius_y = tf.cast(TRUNCATE * sigma_y + 0.5, tf.int32)
    radius_x = tf.cast(TRUNCATE * sigma_x + 0.5, tf.int32)
    rounded = tf.cast(tf.round(points_net), tf.int32)
    col, row = rounded[:, 0], rounded[:, 1]
    col = tf.where(inside, tf.clip_by_value(col, offset_yx[1], offset_yx[1] + content_hw[1] - 1), col)
    row = tf.where(inside, tf.clip_by_value(row, offset_yx[0], offset_yx[0] + content_hw[0] - 1), row)
    col = tf.where(flip, dst_w - 1 - col, col)
    mask = content_mask(dst_hw, content_hw, offset_yx, flip)
    hits = tf.stack([tf.boolean_mask(row, inside), tf.boolean_mask(col, inside)], axis=1)
    fixation_map = tf.cast(tf.scatter_nd(hits, tf.ones(tf.shape(hits)[:1]), dst_hw) > 0, tf.float32)
    near = (row >= -radius_y) & (row < dst_h + radius_y) & (col >= -radius_x) & (col < dst_w + radius_x)
    extended_w = dst_w + 2 * radius_x
    pixels, _ = tf.unique(tf.boolean_mask((row + radius_y) * extended_w + col + radius_x, near))
    profiles_y = _gaussian_profiles(pixels // extended_w - radius_y, dst_h, sigma_y, radius_y)
    profiles_x = _gaussian_profiles(pixels % extended_w - radius_x, dst_w, sigma_x, radius_x)
    density = tf.matmul(profiles_y, profiles_x, transpose_b=True) * mask
    return tf.ensure_shape(fixation_map * mask, dst_hw), tf.ensure_shape(density, dst_hw)


def normalise_sum(x: tf.Tensor) -> tf.Tensor:
    """x / sum(x); zeros stay zeros."""
    total = tf.reduce_sum(x)
    return tf.where(total > 0, x / tf.maximum(total, 1e-30), tf.zeros_like(x))


def normalise_max(x: tf.Tensor) -> tf.Tensor:
    """x / max(x); zeros stay zeros."""
    peak = tf.reduce_max(x)
    return tf.where(peak > 0, x / tf.maximum(peak, 1e-30), tf.zeros_like(x))

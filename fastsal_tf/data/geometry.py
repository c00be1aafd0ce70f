"""Resize policies and their inverse: where an image lands in the network frame, and back.

"stretch" (the paper) resizes the image to the network size; "letterbox" keeps the aspect ratio, scales the
image to fit and centres it, padding with zeros. Coordinates follow fastsal_tf.fixations: pixel centres at
integers, so a continuous position u = x + 0.5 scales by content/source size.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fastsal_tf.imaging import RESIZE_POLICIES, Placement, check_policy, placement

__all__ = ["RESIZE_POLICIES", "Placement", "check_policy", "letterbox_params", "place", "placement_tf",
           "resize_image", "unletterbox"]


def placement_tf(src_h, src_w, dst_hw: tuple[int, int], policy: str) -> tuple[tf.Tensor, ...]:
    """(content_h, content_w, offset_y, offset_x) as int32 tensors for a src_h×src_w region (tensors or ints)."""
    check_policy(policy)
    dst_h, dst_w = dst_hw
    if policy == "stretch":
        return tf.constant(dst_h), tf.constant(dst_w), tf.constant(0), tf.constant(0)
    src_h = tf.cast(src_h, tf.float64)
    src_w = tf.cast(src_w, tf.float64)
    scale = tf.minimum(dst_h / src_h, dst_w / src_w)
    content_h = tf.clip_by_value(tf.cast(tf.floor(src_h * scale + 0.5), tf.int32), 1, dst_h)
    content_w = tf.clip_by_value(tf.cast(tf.floor(src_w * scale + 0.5), tf.int32), 1, dst_w)
    return content_h, content_w, (dst_h - content_h) // 2, (dst_w - content_w) // 2


def letterbox_params(src_hw: tuple[int, int], dst_hw: tuple[int, int], policy: str = "letterbox") -> Placement:
    """Placement of a whole src_hw=(H, W) image in a dst_hw network frame under policy (fastsal_tf.imaging)."""
    return placement((int(src_hw[0]), int(src_hw[1])), (int(dst_hw[0]), int(dst_hw[1])), policy)


def place(x: tf.Tensor, content_hw, offset_yx, dst_hw: tuple[int, int]) -> tf.Tensor:
    """Resizes float (h, w, C) x to content_hw (bilinear, antialiased) and pads it with zeros to dst_hw
    at offset_yx. Returns (dst_h, dst_w, C) float32."""
    resized = tf.image.resize(x, tf.stack(content_hw), method="bilinear", antialias=True)
    padded = tf.image.pad_to_bounding_box(resized, offset_yx[0], offset_yx[1], dst_hw[0], dst_hw[1])
    return tf.ensure_shape(padded, (dst_hw[0], dst_hw[1], x.shape[-1]))


def resize_image(image, dst_hw: tuple[int, int], policy: str = "stretch") -> tf.Tensor:
    """RGB (H, W, 3) image (any dtype, 0–255) → float32 (dst_h, dst_w, 3) network input under policy.
    Works eagerly and inside tf.data; invert with unletterbox(map, letterbox_params(...), (H, W))."""
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    content_h, content_w, offset_y, offset_x = placement_tf(shape[0], shape[1], tuple(dst_hw), policy)
    return place(image, (content_h, content_w), (offset_y, offset_x), tuple(dst_hw))


def unletterbox(saliency_map, params: Placement, src_hw: tuple[int, int]) -> np.ndarray:
    """Maps a network-frame map (dst_h, dst_w) or (dst_h, dst_w, C) back to the source image size src_hw:
    crops the placement's content and resizes it bilinearly (antialiased). Returns float32 of shape
    src_hw (+ C). A probability map is no longer normalised afterwards: divide by its sum if needed."""
    array = np.asarray(saliency_map, dtype=np.float32)
    squeeze = array.ndim == 2
    if squeeze:
        array = array[..., None]
    content = params.crop(array)
    restored = tf.image.resize(content, tuple(src_hw), method="bilinear", antialias=True).numpy()
    return restored[..., 0] if squeeze else restored

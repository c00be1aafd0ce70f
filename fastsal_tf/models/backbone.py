"""MobileNetV2 (width 1.0) encoder exposing the 18 feature taps FastSal concatenates.

Layer names follow Keras' `keras.applications.MobileNetV2` ("Conv1", "expanded_conv_depthwise",
"block_{i}_expand", …, "Conv_1") so ImageNet weights map by name. The taps are the outputs of
torchvision's `features[1..18]`: 16@H/2; 24@H/4 ×2; 32@H/8 ×3; 64@H/16 ×4; 96@H/16 ×3; 160@H/32 ×3;
320@H/32; 1280@H/32 (the final 1×1 conv + BN + ReLU6).
"""

from __future__ import annotations

import keras
from keras import layers

# (expansion t, output channels c, repeats n, first stride s) of MobileNetV2.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
PADDINGS = ("torch", "same")
BN_EPSILON = {"torch": 1e-5, "keras": 1e-3}


def conv3x3(x, filters, stride, padding, name, depthwise=False, initializer="glorot_uniform"):
    """3×3 convolution (or depthwise). Stride-2 padding: "torch" pads 1 on every side (PyTorch
    `padding=1`), "same" is TF's (bottom/right only for even sizes). Stride 1 is symmetric in both."""
    conv_padding = "same"
    if stride == 2 and padding == "torch":
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        conv_padding = "valid"
    if depthwise:
        return layers.DepthwiseConv2D(3, strides=stride, padding=conv_padding, use_bias=False,
                                      depthwise_initializer=initializer, name=name)(x)
    return layers.Conv2D(filters, 3, strides=stride, padding=conv_padding, use_bias=False,
                         kernel_initializer=initializer, name=name)(x)


def batch_norm(x, epsilon, name):
    return layers.BatchNormalization(epsilon=epsilon, momentum=0.9, name=name)(x)


def inverted_residual(x, expansion, filters, stride, padding, bn_epsilon, prefix, initializer="glorot_uniform"):
    """MobileNetV2 block: [1×1 expand + BN + ReLU6] → dw3×3 + BN + ReLU6 → 1×1 project + BN,
    plus the input when stride is 1 and the channel count is unchanged."""
    inputs = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = layers.Conv2D(in_channels * expansion, 1, use_bias=False, kernel_initializer=initializer,
                          name=f"{prefix}expand")(x)
        x = batch_norm(x, bn_epsilon, f"{prefix}expand_BN")
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    x = conv3x3(x, None, stride, padding, f"{prefix}depthwise", depthwise=True, initializer=initializer)
    x = batch_norm(x, bn_epsilon, f"{prefix}depthwise_BN")
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=initializer, name=f"{prefix}project")(x)
    x = batch_norm(x, bn_epsilon, f"{prefix}project_BN")
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def mobilenet_v2_taps(x, padding="same", bn_epsilon=1e-3):
    """Applies MobileNetV2 features[0..18] to a normalised NHWC tensor; returns the 18 tap tensors."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    x = conv3x3(x, 32, 2, padding, "Conv1")
    x = batch_norm(x, bn_epsilon, "bn_Conv1")
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    taps = []
    block = 0
    for expansion, filters, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for i in range(repeats):
            prefix = "expanded_conv_" if block == 0 else f"block_{block}_"
            x = inverted_residual(x, expansion, filters, first_stride if i == 0 else 1, padding, bn_epsilon, prefix)
            taps.append(x)
            block += 1
    x = layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x)
    x = batch_norm(x, bn_epsilon, "Conv_1_bn")
    x = layers.ReLU(6.0, name="out_relu")(x)
    taps.append(x)
    return taps


def build_backbone(input_shape=(192, 256, 3), padding="same", bn_epsilon=1e-3, name="mobilenet_v2_taps"):
    """Keras Model: normalised (N, H, W, 3) → list of the 18 tap tensors."""
    inputs = keras.Input(input_shape, name="normalized_image")
    return keras.Model(inputs, mobilenet_v2_taps(inputs, padding, bn_epsilon), name=name)

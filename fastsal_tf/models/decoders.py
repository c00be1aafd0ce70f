"""FastSal's multi-scale feature groups, adaptation layers, and the two decoders (paper Sec. III).

Feature groups (from the 18 MobileNetV2 taps b1..b18, "PS" = pixel shuffle ×2):
E1 = concat[b1, PS(concat[b2, b3])] 28@H/2; E2 = PS(concat[b4..b6]) 24@H/4;
E3 = PS(concat[b7..b13]) 136@H/8; E4 = PS(concat[b14..b18]) 520@H/16.
"""

from __future__ import annotations

import keras
from keras import layers

from fastsal_tf.models.backbone import inverted_residual
from fastsal_tf.models.layers import PixelShuffle, UpsampleAlignCorners

GROUP_CHANNELS = (28, 24, 136, 520)
HINT_CHANNELS = (128, 256, 512, 512)  # hint-loss head, also FastSal-C's adaptation
A_CHANNELS = (8, 32, 128, 512)


def decoder_init():
    """The authors' initialisation of every decoder convolution: N(0, 0.01)."""
    return keras.initializers.RandomNormal(stddev=0.01)


def concat(tensors, name):
    return tensors[0] if len(tensors) == 1 else layers.Concatenate(name=name)(tensors)


def feature_groups(taps, order="DCR"):
    """The four feature groups E1..E4 from the 18 taps (list of tensors, b1 first)."""
    b = [None] + list(taps)  # 1-based like the paper
    e1 = layers.Concatenate(name="group_1")(
        [b[1], PixelShuffle(2, order, name="group_1_shuffle")(concat(b[2:4], "group_1_taps"))])
    e2 = PixelShuffle(2, order, name="group_2")(concat(b[4:7], "group_2_taps"))
    e3 = PixelShuffle(2, order, name="group_3")(concat(b[7:14], "group_3_taps"))
    e4 = PixelShuffle(2, order, name="group_4")(concat(b[14:19], "group_4_taps"))
    return [e1, e2, e3, e4]


def adaptation(groups, channels):
    """1×1 conv (with bias) + ReLU per group: layers adapt_0..adapt_3."""
    outputs = []
    for i, (x, c) in enumerate(zip(groups, channels)):
        x = layers.Conv2D(c, 1, kernel_initializer=decoder_init(), name=f"adapt_{i}")(x)
        outputs.append(layers.ReLU(name=f"adapt_{i}_relu")(x))
    return outputs


def head(x):
    """3×3 conv (symmetric padding, bias) to one channel: the logits, (N, H, W, 1)."""
    return layers.Conv2D(1, 3, padding="same", kernel_initializer=decoder_init(), name="logits", dtype="float32")(x)


def decoder_block(x, padding, bn_epsilon, prefix):
    """FastSal-A decoder block: x + InvertedResidual(x, expansion 2), where the inverted residual
    carries its own skip, so the block computes 2·x + F(x)."""
    residual = inverted_residual(x, 2, x.shape[-1], 1, padding, bn_epsilon, prefix, decoder_init())
    return layers.Add(name=f"{prefix}outer_add")([x, residual])


def fastsal_a_decoder(groups, order="DCR", padding="same", bn_epsilon=1e-3):
    """Addition decoder: D_k = adapt_k(E_k); F4 = PS(blk4(D3)); F_k = PS(blk_k(D_{k-1} + F_{k+1}));
    logits = conv3×3(F1) at full resolution."""
    d = adaptation(groups, A_CHANNELS)
    x = d[3]
    for k in (4, 3, 2, 1):
        if k < 4:
            x = layers.Add(name=f"dec{k}_skip")([d[k - 1], x])
        x = decoder_block(x, padding, bn_epsilon, f"dec{k}_")
        x = PixelShuffle(2, order, name=f"dec{k}_shuffle")(x)
    return head(x)


def fastsal_c_decoder(groups, order="DCR"):
    """Concatenation decoder: adapt_k(E_k) upsampled to H/2 (bilinear, align_corners=True), concatenated
    (1408 channels), pixel-shuffled to full resolution (352), conv3×3 → logits."""
    d = adaptation(groups, HINT_CHANNELS)
    ups = [d[0]] + [UpsampleAlignCorners(2 ** k, name=f"adapt_{k}_upsample")(d[k]) for k in (1, 2, 3)]
    x = layers.Concatenate(name="decoder_concat")(ups)
    x = PixelShuffle(2, order, name="decoder_shuffle")(x)
    return head(x)

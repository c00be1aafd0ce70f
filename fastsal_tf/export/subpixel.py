"""Moving the head convolution in front of the last pixel shuffle, for export.

FastSal-A ends in pixel shuffle (N, H/2, W/2, 8) → (N, H, W, 2), then the 3×3 logits convolution to one
channel at full resolution. A convolution with 2 input and 1 output channel is the worst case for
LiteRT's XNNPACK kernels (they vectorise over channels): in the int8 export it took about 1 ms of the
model's ~6 (benchmarks/profile_ops.py). The same values come from a "sub-pixel" convolution at half
resolution: output channel (dy·r + dx)·F + f of a K×K convolution on the (N, H/r, W/r, C·r²) tensor computes
full-resolution pixel (r·y + dy, r·x + dx), followed by a depth_to_space (DCR) of the F-channel result.
Each of its r² output channels holds every weight of the original kernel once (the rest are zeros), so
int8 per-channel weight scales, and the integer products, are the original ones. Zero "same" padding
at full resolution is zero padding at half resolution, so borders agree too.
"""

from __future__ import annotations

import numpy as np

# Fold only narrow heads: the sub-pixel kernel has r² times the multiply-adds (mostly zeros), which a
# wide input (FastSal-C's 88 channels at full resolution) pays for.
MAX_FOLD_CHANNELS = 8


def fold_head_into_shuffle(model, max_channels: int = MAX_FOLD_CHANNELS):
    """`model` (Keras, one output) with its output convolution moved in front of the pixel shuffle that
    feeds it (same values up to float rounding), or `model` itself when its output is not a stride-1,
    undilated, odd-sized "same" Conv2D without activation reading a PixelShuffle's output of at most
    `max_channels` channels."""
    import keras

    from fastsal_tf.models.layers import PixelShuffle

    conv, shuffled = _producer(model.output)
    if not isinstance(conv, keras.layers.Conv2D) or not _foldable(conv):
        return model
    shuffle, features = _producer(shuffled)
    if not isinstance(shuffle, PixelShuffle) or shuffled.shape[-1] > max_channels:
        return model
    kernel, bias = (np.asarray(w) for w in conv.get_weights()) if conv.use_bias else (conv.get_weights()[0], None)
    sub_kernel = subpixel_kernel(np.asarray(kernel), source_positions(shuffle, features.shape[-1]))
    block = shuffle.block_size
    folded = keras.layers.Conv2D(sub_kernel.shape[-1], sub_kernel.shape[0], padding="same", use_bias=conv.use_bias,
                                 dtype=conv.dtype_policy, name=f"{conv.name}_subpixel")
    outputs = PixelShuffle(block, "DCR", name=f"{conv.name}_shuffle")(folded(features))
    folded.set_weights([sub_kernel] + ([np.tile(bias, block * block)] if conv.use_bias else []))
    return keras.Model(model.inputs, outputs, name=model.name)


def _producer(tensor):
    """(layer, its single input tensor) of the node of `tensor`'s graph that made it; (None, None) for a
    model input or a layer with several inputs. Read from the node rather than `layer.input`, which is the
    layer's first call (another graph when a clone shares the layer)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, None
    inputs = history.operation._inbound_nodes[history.node_index].input_tensors
    return (history.operation, inputs[0]) if len(inputs) == 1 else (None, None)


def _foldable(conv) -> bool:
    size = conv.kernel_size
    return (conv.padding == "same" and tuple(conv.strides) == (1, 1) and tuple(conv.dilation_rate) == (1, 1)
            and size[0] == size[1] and size[0] % 2 == 1 and conv.groups == 1
            and conv.activation.__name__ == "linear" and conv.data_format == "channels_last")


def source_positions(shuffle, channels: int) -> np.ndarray:
    """(r, r, channels / r²) int array: which input channel of `shuffle` lands at sub-pixel (dy, dx), channel c."""
    probe = np.arange(channels, dtype=np.float32).reshape(1, 1, 1, channels)
    return np.asarray(shuffle(probe))[0].round().astype(int)


def subpixel_kernel(kernel: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """(K, K, C, F) kernel of a "same" convolution after a pixel shuffle whose sub-pixel (dy, dx) channel c
    comes from input channel sources[dy, dx, c] → the (K', K', C·r², r²·F) kernel of the convolution at the
    shuffle's input resolution whose output, depth_to_space'd (DCR), equals the original output."""
    size, _, channels, filters = kernel.shape
    block = sources.shape[0]
    half = size // 2
    reach = -(-half // block)  # half-resolution rows a full-resolution window touches on either side
    result = np.zeros((2 * reach + 1, 2 * reach + 1, channels * block * block, block * block * filters),
                      kernel.dtype)
    for dy in range(block):
        for dx in range(block):
            out = slice((dy * block + dx) * filters, (dy * block + dx + 1) * filters)
            for u in range(-half, half + 1):
                row, sub_y = divmod(dy + u, block)
                for v in range(-half, half + 1):
                    col, sub_x = divmod(dx + v, block)
                    result[row + reach, col + reach, sources[sub_y, sub_x], out] += kernel[u + half, v + half]
    return result

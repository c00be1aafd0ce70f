"""Random but well-conditioned weights for export tests and benchmarks when no trained weights exist.

Keras' default initialisation gives FastSal near-constant logits (their spatial spread is ~1e-5 of their
mean), on which correlations only measure float rounding. He-scaled random weights put the deep network
in its chaotic regime, where int8 rounding is amplified layer after layer (int8 CC ≈ 0.93 on the
probability map), unlike a trained network. This draws normal kernels of gain 0.7 (std 0.7/√fan_in:
activations shrink gently with depth, as in a trained net), random BatchNorm parameters and statistics,
then rescales the last convolution so the logits have mean 0 and a chosen spread on a few images, like
the authors' random test checkpoints (mean ≈ 0, std ≈ 2 on photos). Measured at 64×64: int8 CC ≈ 0.999
(map) and ≈ 0.998 (probability map).
"""

from __future__ import annotations

import numpy as np


def randomize_weights(model, images, seed=0, logit_std=2.0, gain=0.7):
    """Sets every weight of a FastSal Keras `model` in place (see the module docstring); returns it.

    images: (H, W, 3) RGB 0–255 arrays at the model's input size, used to measure the logits for the
    rescaling of the layer named "logits".
    """
    import keras

    from fastsal_tf.export.litert import logits_model

    rng = np.random.default_rng(seed)

    def normal(shape, std):
        return rng.normal(0.0, std, shape).astype(np.float32)

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            kernel = layer.kernel
            fan_in = int(np.prod(kernel.shape[:2]))
            if not isinstance(layer, keras.layers.DepthwiseConv2D):
                fan_in *= int(kernel.shape[2])
            kernel.assign(normal(kernel.shape, gain / np.sqrt(fan_in)))
            if layer.use_bias:
                layer.bias.assign(normal(layer.bias.shape, 0.05))
        elif isinstance(layer, keras.layers.BatchNormalization):
            channels = tuple(layer.gamma.shape)
            layer.gamma.assign(rng.uniform(0.8, 1.2, channels).astype(np.float32))
            layer.beta.assign(normal(channels, 0.1))
            layer.moving_mean.assign(normal(channels, 0.2))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype(np.float32))
    batch = np.stack([np.asarray(image, np.float32) for image in images])
    head = model.get_layer("logits")
    logits = np.asarray(logits_model(model, batch.shape[1:3])(batch, training=False), np.float64)
    bias = head.bias.numpy().astype(np.float64)
    centred = logits - bias
    if centred.std() > 0:
        scale = logit_std / centred.std()
        head.kernel.assign((head.kernel.numpy() * scale).astype(np.float32))
        head.bias.assign(np.full(bias.shape, -centred.mean() * scale, np.float32))
    return model

"""Random but well-conditioned weights for export tests and benchmarks when no trained weights exist.

Keras' default initialisation gives FastSal near-constant logits (their spatial spread is ~1e-5 of their
mean), on which correlations only measure float rounding. He-scaled random weights (like the authors'
random test checkpoints) put the deep network in its chaotic regime, where int8 rounding is amplified
layer after layer (random_A.pth at 64×64: int8 CC 0.91 on the map, 0.75 on the probability map), unlike
a trained network. This draws normal kernels of gain 0.7 (std 0.7/√fan_in), small random BatchNorm
offsets and statistics, then rescales the last convolution so the logits have mean 0 and std 2 on a
few images. Int8 CC at 64×64: ≈ 0.9995 (map), ≈ 0.997 (probability map).

Limitation: these outputs depend only weakly on the image (CC between the logits of different images:
A ≈ 1.0, C ≈ 0.97; the small offsets add up through the depth to a fixed pattern). Such models check the
conversion (ops, quantization of every layer, float tail, signature), not int8 accuracy on real content.
Without the offsets the outputs do follow the image (inter-image CC 0.15–0.3), but then the int8
probability map misses the per-image bound (A, 192×256, 200 OSIE calibration images: CC mean 0.991,
min 0.973 < 0.98) — trained weights must be checked on their own.
"""

from __future__ import annotations

import numpy as np


def randomize_weights(model, images, seed=0, logit_std=2.0, gain=0.7, offset=0.05):
    """Sets every weight of a FastSal Keras `model` in place (see the module docstring); returns it.

    images: (H, W, 3) RGB 0–255 arrays at the model's input size, used to measure the logits for the
    rescaling of the layer named "logits". offset: std of the BatchNorm beta / moving mean and conv biases.
    """
    import keras

    from fastsal_tf.export.graph import logits_model

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
                layer.bias.assign(normal(layer.bias.shape, offset))
        elif isinstance(layer, keras.layers.BatchNormalization):
            channels = tuple(layer.gamma.shape)
            layer.gamma.assign(rng.uniform(0.8, 1.2, channels).astype(np.float32))
            layer.beta.assign(normal(channels, offset))
            layer.moving_mean.assign(normal(channels, offset))
            layer.moving_variance.assign(rng.uniform(0.8, 1.25, channels).astype(np.float32))
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

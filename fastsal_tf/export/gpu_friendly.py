"""The GPU-friendly export rewrite: the PyTorch-order (CRD) pixel shuffle, a GATHER once converted, which
the TFLite GPU delegate cannot run, replaced by strided channel slices + one concatenation + depth_to_space
(the same permutation, bit for bit; see fastsal_tf.export.gpu_compat for the delegate's rules)."""

from __future__ import annotations


def sliced_pixel_shuffle(x, block_size):
    """PyTorch-order (CRD) pixel shuffle without GATHER: the DCR input channel k·C + c must hold CRD
    channel c·r² + k, i.e. block k of the depth_to_space input is x[..., k::r²] (a STRIDED_SLICE)."""
    import tensorflow as tf

    r2 = block_size * block_size
    parts = [x[..., k::r2] for k in range(r2)]
    return tf.nn.depth_to_space(tf.concat(parts, axis=-1), block_size)


def _sliced_pixel_shuffle_layer():
    import keras

    class SlicedPixelShuffle(keras.layers.Layer):
        """Export-time stand-in for PixelShuffle(order="CRD"): strided slices + concat + depth_to_space."""

        def __init__(self, block_size=2, **kwargs):
            super().__init__(**kwargs)
            self.block_size = int(block_size)

        def call(self, inputs):
            return sliced_pixel_shuffle(inputs, self.block_size)

        def compute_output_shape(self, input_shape):
            n, h, w, c = input_shape
            r = self.block_size
            return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    return SlicedPixelShuffle


def gpu_friendly_model(model):
    """A copy of the Keras `model` in which every PixelShuffle(order="CRD") (a GATHER + DEPTH_TO_SPACE
    once converted) is replaced by `sliced_pixel_shuffle` (STRIDED_SLICE ×r² + CONCATENATION +
    DEPTH_TO_SPACE). The other layers are shared, not copied (same weights). Models without CRD pixel
    shuffles are returned unchanged."""
    import keras

    from fastsal_tf.models.layers import PixelShuffle

    if not any(isinstance(layer, PixelShuffle) and layer.order == "CRD" for layer in model.layers):
        return model
    layer_class = _sliced_pixel_shuffle_layer()

    def replace(layer):
        if isinstance(layer, PixelShuffle) and layer.order == "CRD":
            return layer_class(layer.block_size, name=layer.name)
        return layer

    clone = keras.models.clone_model(model, clone_function=replace)
    if any(isinstance(layer, PixelShuffle) and layer.order == "CRD" for layer in clone.layers):
        raise ValueError("could not replace every CRD pixel shuffle (nested models are not supported)")
    return clone
